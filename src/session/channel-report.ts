/**
 * How the peer table describes a control connection in reports and traces: its remote address
 * (peerError's `endpoint`, a budget refusal's `address`) and the de-duplication trail.
 */
import { Endpoint, type Connection } from '../net/index.js';
import type { ControlChannel } from './control-channel.js';
import type { PeerID } from './peer-id.js';
import type { PeerRecord } from './peer-record.js';
import { connectionChannel, log } from './diagnostics.js';

/** The de-duplication trail, for diagnostics_channel subscribers and NODE_DEBUG=peerlink:session. */
export function traceDecision(localId: PeerID, ch: ControlChannel, rec: PeerRecord, decision: string, reason?: string): void {
  if (connectionChannel.hasSubscribers) {
    connectionChannel.publish({ session: localId.id, peer: rec.key, decision, generation: ch.generation, direction: ch.direction, ...(reason ? { reason } : {}) });
  }
  log('%s: %s connection #%d %s %s (generation %d)%s', localId.displayName, ch.direction, ch.id, decision, rec.peer.displayName, ch.generation, reason ? `: ${reason}` : '');
}

export function addressOf(ch: ControlChannel): { address?: string } {
  const a = remoteOf(ch.connection);
  return a ? { address: a } : {};
}

export function remoteOf(conn: Connection): string | undefined {
  const r = conn.currentPath?.remoteEndpoint;
  return r ? Endpoint.format(r) : undefined;
}
