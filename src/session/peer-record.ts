/**
 * What the session knows about one remote peer: its identity, the one active control
 * connection, connections still in their handshake, and the state the app was last told.
 * A record outlives its connections, but not for ever: once the peer is absent (no
 * connection, handshake, claim or stream) it expires (peer-records.ts).
 */
import type { Duplex } from 'node:stream';
import type { PeerID } from './peer-id.js';
import type { ControlChannel } from './control-channel.js';
import type { PeerViability } from './viability.js';

export type PeerState = 'notConnected' | 'connecting' | 'connected';

export class PeerRecord {
  /** Canonical key (lower-case UUID). */
  readonly key: string;
  peer: PeerID;
  /** The control connection in use (WELCOMEd), if any. */
  active: ControlChannel | undefined;
  /** Connections that sent HELLO but are not (yet) the active one (held claims included). */
  readonly pending = new Set<ControlChannel>();
  /**
   * Connections claiming this peer's id while `active` looks alive: held (no WELCOME, nothing
   * delivered) until `active` answers or fails its liveness check (dedup.ts).
   */
  readonly claims = new Set<ControlChannel>();
  /** The active connection whose liveness check is running, if any. */
  checking: ControlChannel | undefined;
  /** When the peer was last seen (a HELLO accepted, a connection closed): ms, the record store's clock. */
  seenAt = 0;
  /** Nonce of the peer's current run (from its last HELLO). */
  remoteNonce: Buffer | undefined;
  /** Generation of the last active connection that died (sent in our next HELLO). */
  lastGeneration = 0;
  /** The peer's advertised instance name, when it told us. */
  instanceName = '';
  /** The state last reported with a `peer` event. */
  reported: PeerState = 'notConnected';
  /** Open streams (app and resource) with this peer, destroyed when it disconnects. */
  readonly streams = new Set<Duplex>();
  /**
   * PKI: the active connection while the two sides establish trust (trust/gate.ts): the peer
   * is `connecting` and nothing it sends is delivered until it is trusted.
   */
  verifying: ControlChannel | undefined;
  /** When the peer last said BYE CLOSING (it left on purpose). */
  leftAt = 0;
  /**
   * The peer was let in during this run (an invitation accepted, or a connection we made or
   * it made while autoConnect): later connections of the same peer are not invitations.
   */
  accepted = false;
  /** The active connection's viability and the sends held while it is not viable (viability.ts). */
  viability: PeerViability | undefined;

  constructor(key: string, peer: PeerID) {
    this.key = key;
    this.peer = peer;
  }

  /** Nothing of the peer's is open here: the record may expire or be evicted. */
  get absent(): boolean {
    return (this.active === undefined || this.active.closed) && this.pending.size === 0 && this.claims.size === 0 && this.streams.size === 0;
  }

  /** False while the active connection's path is down (within viabilityGrace); true otherwise. */
  get viable(): boolean {
    return this.viability?.viable ?? true;
  }

  get state(): PeerState {
    if (this.active && !this.active.closed) return this.verifying === undefined ? 'connected' : 'connecting';
    // Only a connection that reached the handshake counts: failed dials to an absent peer
    // would otherwise report connecting/notConnected over and over.
    if (this.pending.size > 0) return 'connecting';
    return 'notConnected';
  }
}
