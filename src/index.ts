// The public API of peerlink, and nothing else.
export { PeerlinkError, isPeerlinkError } from './errors.js';
export type { PeerlinkErrorCode } from './errors.js';
export { Mdns, Advertisement, ServiceBrowser, advertise, browse, resolve, encodeTxt, decodeTxt, parseServiceType } from './dnssd/index.js';
export type { MdnsOptions, MdnsEvents, AdvertiseOptions, BrowseOptions, ResolveOptions, AdvertisementEvents, BrowseEvent, BrowseEventType, BrowserEvents, ServiceInstance, TxtInput, TxtEntry } from './dnssd/index.js';
export { ResourceTransfer, IncomingResource, validateResourceName } from './session/resource-transfer.js';
export type { ResourceProgress, SendResourceOptions, SentResource, ReceivedResource, TransferState } from './session/resource-transfer.js';
export { PathMonitor, listInterfaces, selectInterfaces, interfacesSatisfying } from './path/index.js';
export type { Path, PathStatus, PathMonitorOptions, InterfaceChange, NetworkInterface, InterfaceType, InterfaceAddress, PathConstraints, InterfaceCosts } from './path/index.js';
export { PeerSession, PeerID } from './session/index.js';
export type { PeerSessionOptions, PeerSessionEvents, PeerErrorInfo, SessionSecurity, PeerState, DiscoveredPeer, SendOptions as SessionSendOptions, OpenStreamOptions, ConnectOptions, PeerInfo as SessionPeerInfo, Architecture } from './session/index.js';
