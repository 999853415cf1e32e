// The public API of peerlink, and nothing else.
export { PeerlinkError, isPeerlinkError } from './errors.js';
export type { PeerlinkErrorCode } from './errors.js';
export { Mdns, Advertisement, ServiceBrowser, advertise, browse, resolve, encodeTxt, decodeTxt, parseServiceType } from './dnssd/index.js';
export { TsigKey, readKeyFile, parseKeyFile, parseKeySpec, UnicastAdvertisement, UnicastBrowser, UnicastContext, discoverBrowseDomains, DnsClient } from './dnssd/index.js';
export { DEFAULT_UNICAST_LIMITS, DEFAULT_MDNS_LIMITS } from './dnssd/index.js';
export type { WideAreaOptions, UnicastAdvertiseOptions, UnicastBrowseOptions, BrowseDomain, DnsServer, UnicastLimits, MdnsLimits } from './dnssd/index.js';
export type { MdnsOptions, MdnsEvents, AdvertiseOptions, BrowseOptions, ResolveOptions, AdvertisementEvents, BrowseEvent, BrowseEventType, BrowserEvents, ServiceInstance, TxtInput, TxtEntry } from './dnssd/index.js';
export { ResourceTransfer, IncomingResource, validateResourceName } from './session/resource-transfer.js';
export type { ResourceProgress, SendResourceOptions, SentResource, ReceivedResource, TransferState, ResourceOffer, RefusedOffer, FreeSpaceFloor, PartialResource, FolderSummary, FolderFileProgress, SkippedEntry } from './session/resource-transfer.js';
export { escapeForDisplay } from './display-text.js';
export { PathMonitor, listInterfaces, selectInterfaces, interfacesSatisfying } from './path/index.js';
export type { Path, PathStatus, PathMonitorOptions, InterfaceChange, NetworkInterface, InterfaceType, InterfaceAddress, PathConstraints, InterfaceCosts } from './path/index.js';
export { PeerSession, PeerID, KnownPeers, SessionIdentity, defaultIdentityBase, Invitation, NwfSession, DEFAULT_LINK_THRESHOLDS } from './session/index.js';
export type { LinkQuality, LinkQualityReport, LinkQualityThresholds, LinkBoundary, LinkTimers, SessionLinkQualityOptions } from './session/index.js';
export type { PkiSecurity, VerificationRequest, TrustPolicy, KnownPeer, PemIdentity } from './session/index.js';
export type { NwfSessionOptions, NwfSessionEvents, NwfFoundPeer } from './session/index.js';
export type { InviteOptions, InvitationState } from './session/index.js';
export type { PeerSessionOptions, SessionResourceOptions, PeerSessionEvents, PeerErrorInfo, SessionSecurity, PeerState, DiscoveredPeer, SendOptions as SessionSendOptions, OpenStreamOptions, ConnectOptions, PeerInfo as SessionPeerInfo, Architecture, DatagramOptions, DatagramFlowStats, DatagramFlowState, DatagramTotals } from './session/index.js';
export { Endpoint, Parameters, Connection, Listener, Browser, lengthPrefixFramer, formatReport, generateIdentity, spkiPin, parsePin, parsePsk, DEFAULT_PSK_IDENTITY } from './net/index.js';
export type {
  HostPortEndpoint,
  ServiceEndpoint,
  InterfaceConstraints,
  TcpOptions,
  KeepaliveOptions,
  RetryOptions,
  PeerInfo as NetPeerInfo,
  PkiOptions,
  PskOptions,
  TlsOptions,
  StreamParametersOptions,
  WsParametersOptions,
  UdpParametersOptions,
  ConnectionEvents,
  SendOptions as ConnectionSendOptions,
  SendData,
  WhenReadyOptions,
  ListenerOptions,
  ListenerServiceOptions,
  ListenerEvents,
  ServiceRegistration,
  BrowseResult,
  BrowserOptions,
  BrowseChange,
  BrowserEvents as NetBrowserEvents,
  Framer,
  Frame,
  OutgoingFrame,
  FrameDecoder,
  ConnectionState,
  ListenerState,
  ConnectionPath,
  PathInterface,
  ConnectionReport,
  ConnectionCounters,
  RttEstimate,
  TlsReport,
  Identity,
  GenerateIdentityOptions,
  TcpInfo,
} from './net/index.js';
