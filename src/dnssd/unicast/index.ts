/**
 * DNS-SD over unicast DNS (RFC 6763 in an ordinary zone): registration with RFC 2136
 * updates signed with TSIG (RFC 8945), browsing by polling, leases. See docs/wide-area.md.
 */
export { DnsClient, parseServer, formatServer } from './client.js';
export type { DnsServer, DnsClientOptions } from './client.js';
export { TsigKey, parseKeyFile, parseKeySpec, readKeyFile, signMessage, verifyResponse, verifyRequest } from './tsig.js';
export type { TsigAlgorithm } from './tsig.js';
export { UnicastContext, parseResolvConf, readResolvConf } from './context.js';
export type { UnicastOptions, ResolvConf, ZoneInfo } from './context.js';
export { UnicastAdvertisement, defaultAddresses, DEFAULT_LEASE_S } from './register.js';
export type { UnicastAdvertiseOptions, UnicastAdvertisementEvents } from './register.js';
export { UnicastBrowser, discoverBrowseDomains, resolveUnicastInstance, UNICAST_INTERFACE } from './browse.js';
export type { UnicastBrowseOptions, BrowseDomain, ResolvedInstance } from './browse.js';
export { encodeUpdate, nameNotInUse, nameInUse, rrsetExists, rrsetEquals, addRecord, deleteRecord, deleteRRset, deleteName, Rcode } from './update.js';
export { resolveWideArea, browseDomainsOf } from './wide-area.js';
export { DEFAULT_UNICAST_LIMITS, resolveUnicastLimits } from './limits.js';
export type { UnicastLimits } from './limits.js';
export type { WideAreaOptions, ResolvedWideArea } from './wide-area.js';
