// src/net: Network-framework-shaped primitives. See docs/net.md.
export { Endpoint } from './endpoint.js';
export type { HostPortEndpoint, ServiceEndpoint } from './endpoint.js';
export { Parameters, DEFAULT_MAX_MESSAGE_SIZE } from './parameters.js';
export type { TransportProtocol, ApplicationProtocol, ResolvedKeepalive, ResolvedRetry } from './parameters.js';
export type {
  InterfaceConstraints,
  TcpOptions,
  KeepaliveOptions,
  RetryOptions,
  PeerInfo,
  PkiOptions,
  PskOptions,
  TlsSecurity,
  TlsOptions,
  CommonParametersOptions,
  StreamParametersOptions,
  WsParametersOptions,
  UdpParametersOptions,
} from './options.js';
export { Connection } from './connection.js';
export { parseTcpInfo } from './tcp-info.js';
export { releaseFreeMemory } from './sockopt.js';
export type { TcpInfo } from './tcp-info.js';
export type { ConnectionEvents, SendOptions, SendData, WhenReadyOptions } from './connection-types.js';
export type { MessagePart } from './receive-queue.js';
export { Listener } from './listener.js';
export type { ListenerOptions, ListenerServiceOptions, ListenerEvents, ServiceRegistration } from './listener.js';
export { Browser } from './browser.js';
export type { BrowseResult, BrowserOptions, BrowseChange, BrowserEvents } from './browser.js';
export { lengthPrefixFramer, MAX_FRAMED_MESSAGE } from './framer.js';
export type { Framer, Frame, OutgoingFrame, FrameDecoder } from './framer.js';
export type { ConnectionState, ListenerState } from './state.js';
export type { ConnectionPath, PathInterface } from './path.js';
export { formatReport } from './report.js';
export type { ConnectionReport, ConnectionCounters, RttEstimate, TlsReport } from './report.js';
export { generateIdentity, spkiPin, parsePin } from './identity.js';
export type { Identity, GenerateIdentityOptions } from './identity.js';
export { DEFAULT_PSK_IDENTITY, parsePsk } from './psk.js';
export { prepareClientTls } from './tls-config.js';
