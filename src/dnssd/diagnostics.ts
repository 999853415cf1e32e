/**
 * Observability for src/dnssd: diagnostics_channel channels (for tools and tests) and human
 * logging, off by default, on with NODE_DEBUG=peerlink (or NODE_DEBUG=peerlink:dnssd).
 */
import { channel } from 'node:diagnostics_channel';
import { debugLog } from '../debug.js';

/** `{name, type, state: 'probing' | 'registered' | 'renamed' | 'stopped', from?}` for each advertisement. */
export const registrationChannel = channel('peerlink:dnssd:registration');
/** `{kind: 'host' | 'service', name, from?}` when a name turned out to be taken. */
export const conflictChannel = channel('peerlink:dnssd:conflict');
/** `{reason: 'malformed' | 'off-link', iface, address, port}` for each dropped packet. */
export const droppedChannel = channel('peerlink:dnssd:dropped');
/** `{event: 'added' | 'changed' | 'removed', name, type, interface}` for each browse result. */
export const browseChannel = channel('peerlink:dnssd:browse');

/**
 * Wide-area DNS-SD: `{event: 'registered' | 'renamed' | 'replaced' | 'refreshed' | 'displaced' |
 * 'removed' | 'expired-removed', domain, name, from?}` for each registration change and each
 * expired registration a key holder deleted.
 */
export const wideAreaChannel = channel('peerlink:dnssd:wide-area');

export const log = debugLog('dnssd');
