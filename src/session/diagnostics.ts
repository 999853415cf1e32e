/**
 * Observability for src/session: diagnostics_channel channels (for tools and tests) and human
 * logging, off by default, on with NODE_DEBUG=peerlink (or NODE_DEBUG=peerlink:session).
 */
import { channel } from 'node:diagnostics_channel';
import { debugLog } from '../debug.js';

/** `{session, peer, displayName, state}` on every reported peer state change. */
export const peerStateChannel = channel('peerlink:session:peer');
/**
 * `{session, peer, decision, generation?, direction, reason?}` whenever a control connection is
 * kept (`accept` / `replace`), dropped as a duplicate, or closed — the de-duplication trail.
 */
export const connectionChannel = channel('peerlink:session:connection');

/**
 * `{reason: 'off-link-address', instance, interface, address}` when discovery ignores an
 * address an mDNS answer named that is not on the link the answer came from.
 */
export const discoveryChannel = channel('peerlink:session:discovery');

/**
 * `{session, peer, state, secured, reason?}` when a peer's datagram flow changes state
 * (`probing`, `open`, `failed` with the reason, `closed`).
 */
export const datagramChannel = channel('peerlink:session:datagram');

/** `{session, peer, quality, report}` when the rated link quality of a peer changes (docs/session.md "Link quality"). */
export const linkQualityChannel = channel('peerlink:session:linkQuality');

export const log = debugLog('session');
