/**
 * De-duplication: which control connection survives when one peer pair has several.
 *
 * One side of every pair decides — the server in client-server, the peer with the larger
 * id (as a 128-bit number) in star — and tells the other with WELCOME (keep) or BYE
 * DUPLICATE (drop). The other side only obeys, so both ends always agree on the same
 * connection, whatever order the connections complete in.
 *
 * Why not the seed's symmetric rule alone ("local > remote → drop outgoing, else drop
 * incoming")? Applied by both sides independently it picks the same connection only when
 * both sides see both connections before using either; when one side has already started
 * sending on the first connection, switching loses or reorders messages, and the rule says
 * nothing about a peer that restarted or a link that flapped (its old connection is dead
 * but still looks established). The deciding side here is the seed's "larger id" side, and
 * its choice keeps the connection it accepted first for a simultaneous dial — the exact
 * outcome the seed's rule produces when one connection is established first — while a HELLO
 * that may come from a peer whose connection in use died is a *claim* on that peer's place:
 *   - a HELLO with a new nonce (the peer restarted);
 *   - a HELLO whose `lastGeneration` names the active connection (the other side saw that
 *     connection die and reconnected: a link flap);
 *   - a HELLO arriving while the active connection has been silent for longer than the
 *     keepalive interval (it may have failed its keepalive).
 * Until peer ids are bound to keys, anyone on the link (security none) or any key holder (psk)
 * can send any of these with a connected peer's id: a claim alone never displaces the live
 * connection. The connection in use is checked with a PING round trip (deadline
 * `checkDeadline()`), and the claimant replaces it only if that check fails. Client-server
 * follows the same rules (the newest connection wins only when its predecessor fails the check).
 */
import { comparePeerIdBytes } from './peer-id.js';
import type { HelloRole } from './protocol/messages.js';

export type Architecture = 'star' | 'client-server';

/** What the deciding side knows about the connection it has accepted for a peer. */
export interface ActiveConnectionFacts {
  /** Nonce from that connection's HELLO. */
  remoteNonce: Uint8Array;
  /** Generation assigned in its WELCOME. */
  generation: number;
  /** Milliseconds since anything last arrived on it. */
  silentFor: number;
}

/** What a new HELLO says. */
export interface IncomingHelloFacts {
  nonce: Uint8Array;
  lastGeneration: number;
}

/**
 * `check`: the HELLO claims the place of the connection in use; it is checked with a PING round
 * trip and replaced only if that fails (or it closes meanwhile).
 */
export type DedupDecision = 'accept' | 'check' | 'duplicate';

/** The liveness check's shortest deadline, ms. */
export const CHECK_MIN_DEADLINE = 2000;

/**
 * How long the connection in use has to answer the liveness check: max(2 s, 4 × its smoothed
 * RTT) — long enough for a live peer on a slow or busy link, short enough that a restarted
 * peer reconnects before its old connection's keepalive would notice.
 */
export function checkDeadline(rttMs: number | undefined): number {
  return Math.max(CHECK_MIN_DEADLINE, 4 * (rttMs ?? 0));
}

/**
 * True when the local side decides for this pair. Throws nothing: a role mismatch is
 * checked separately by `rolesCompatible`.
 */
export function isDecider(architecture: Architecture, localId: Uint8Array, remoteId: Uint8Array, localRole: HelloRole): boolean {
  if (architecture === 'client-server') return localRole === 'server';
  return comparePeerIdBytes(localId, remoteId) > 0;
}

/** The roles of a pair make sense for the architecture (star: both peers; client-server: one of each). */
export function rolesCompatible(architecture: Architecture, localRole: HelloRole, remoteRole: HelloRole): boolean {
  if (architecture === 'star') return localRole === 'peer' && remoteRole === 'peer';
  return (localRole === 'server' && remoteRole === 'client') || (localRole === 'client' && remoteRole === 'server');
}

/**
 * The deciding side's choice for a connection whose HELLO just arrived.
 * `staleAfter`: silence (ms) after which an active connection may have failed its keepalive.
 */
export function decide(active: ActiveConnectionFacts | undefined, hello: IncomingHelloFacts, staleAfter: number): DedupDecision {
  if (!active) return 'accept';
  if (Buffer.compare(active.remoteNonce, hello.nonce) !== 0) return 'check';
  if (hello.lastGeneration !== 0 && hello.lastGeneration === active.generation) return 'check';
  if (active.silentFor > staleAfter) return 'check';
  return 'duplicate';
}

/**
 * Generations start at a random point per run so a `lastGeneration` remembered from a
 * previous run of the deciding side practically never names a connection of this run.
 */
export class GenerationCounter {
  private next: number;
  constructor(start = 1 + Math.floor(Math.random() * 0x7fffffff)) {
    this.next = start;
  }
  take(): number {
    const g = this.next;
    this.next = this.next >= 0xffffffff ? 1 : this.next + 1;
    return g;
  }
}
