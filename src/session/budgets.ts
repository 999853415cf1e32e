/**
 * Budgets: a limit on every piece of state a peer (or a stranger on the link) can make a
 * session hold or do — frames before HELLO, unidentified connections, stream offers,
 * dial-backs, open streams, transfers, dials, discovery records, datagrams. Each has a documented
 * default (docs/security.md) sized so that a 100-peer session and the loopback demo fit
 * with room to spare, and an option (`PeerSessionOptions.budgets`).
 *
 * Going over a budget costs the offender only: the offending frame, connection, offer or
 * dial is refused, the event is counted (`session.stats.budgets[name]`) and published on
 * diagnostics_channel `peerlink:session:budget` as `{session, budget, peer?, address?,
 * limit, detail?}`. Nothing here slows or drops other peers.
 */
import { channel } from 'node:diagnostics_channel';
import { PeerlinkError } from '../errors.js';

export interface SessionBudgets {
  /** Largest first frame on a connection that has not said HELLO / STREAM_BIND, bytes. Default 2048. */
  firstFrameBytes: number;
  /** Incoming connections that have not identified themselves yet, in total. Default 256. */
  unidentifiedConnections: number;
  /** …and from one source address. Default 64. */
  unidentifiedPerAddress: number;
  /** Time an incoming connection may take to identify itself, ms. Default 10 000. */
  unidentifiedTimeout: number;
  /** Stream offers from one peer waiting for their stream connection. Default 32. */
  streamOffersPerPeer: number;
  /** Dial-backs (we dial the offering peer) in flight for one peer. Default 8. */
  dialBacksPerPeer: number;
  /** Open streams with one peer (both directions). Default 64. */
  streamsPerPeer: number;
  /** Incoming resource transfers from one peer at a time. Default 4. */
  transfersPerPeer: number;
  /** Entries (files, directories, skipped items) of one incoming folder's manifest. Default 100 000. */
  folderEntries: number;
  /** Bytes of one incoming folder's manifest (read before the offer is shown). Default 16 777 216 (16 MiB). */
  folderManifestBytes: number;
  /**
   * Declared manifest bytes of all incoming folders at once, whatever the peer: a manifest is
   * held (parsed, ≈ 2.5 × its bytes) for its whole transfer, and transfersPerPeer bounds one
   * peer only. Default 67 108 864 (64 MiB: four manifests at the folderManifestBytes limit).
   */
  folderManifestBytesTotal: number;
  /** Path components of one entry of an incoming folder. Default 64. */
  folderDepth: number;
  /** Silence after which an incoming transfer's body fails and its reservation is released, ms. Default 20 000. */
  transferIdleTimeout: number;
  /** Bytes an incoming transfer must receive per transferIdleTimeout; less counts as silence. Default 65 536. */
  transferMinBytes: number;
  /** New outgoing dials per second, whole session. Default 20. */
  dialsPerSecond: number;
  /**
   * Dials of browse results in their TCP + TLS handshake at once, whole session; the rest wait
   * their turn, oldest first — our own first dials before the ones the pair rule leaves to the
   * other side, for up to 30 s (docs/session.md) — (connect() and invite() are not held). Default 6.
   */
  dialsInFlight: number;
  /**
   * Of those, dials to one remote address (any port) at once: a stranger advertising many
   * instances at one address that stall the handshake (a tarpit) holds no more. Default 2.
   */
  dialsInFlightPerAddress: number;
  /**
   * Of those, dials at once to destinations (address:port) whose last dial timed out and that
   * never led to a connected peer: tarpits at many addresses hold no more once each has timed
   * out, and the other places stay free for peers that answer. Default 2.
   */
  dialsInFlightSuspect: number;
  /** Back-off for dials to one address:port learned from mDNS: first delay, ms (doubles). Default 1000. */
  dialBackoffInitial: number;
  /** Failures after which a destination is tried at most once per `dialBackoffSlow`. Default 3. */
  dialFailuresBeforeSlow: number;
  /** The slow retry period, ms. Default 60 000. */
  dialBackoffSlow: number;
  /** Records and dial targets of absent peers expire after this, ms. Default 600 000 (10 min). */
  absentPeerExpiry: number;
  /** Most peer records and dial targets kept (least recently seen evicted first). Default 4096. */
  maxPeerRecords: number;
  /**
   * Connections claiming a connected peer's id held at once while its connection in use is
   * checked (a PING round trip, at most max(2 s, 4 × RTT)); more are refused. Default 4.
   */
  claimsPerPeer: number;
  /**
   * Context bytes of one invitation (sent and received). Default 1024. An INVITE travels
   * before the inviter is accepted, so it must also fit `firstFrameBytes` (7 bytes of header).
   */
  invitationContextBytes: number;
  /** Invitations waiting for the app's answer, in total. Default 16. */
  invitationsPending: number;
  /** …from one source address. Default 4. */
  invitationsPerAddress: number;
  /** Longest an invitation waits for the app's answer, ms, whatever timeout the inviter asks. Default 120 000. */
  invitationTimeout: number;
  /** Datagrams accepted from one peer's best-effort flow per second; more are dropped before any cryptography. Default 10 000. */
  datagramsPerSecond: number;
  /** Datagram bytes accepted from one peer's flow per second. Default 16 777 216 (16 MiB). */
  datagramBytesPerSecond: number;
  /**
   * Datagram flows a peer may ask for (DATAGRAM_OPEN) on one control connection; more are
   * refused (DATAGRAM_ACCEPT port 0). Each token used is remembered for the connection's life,
   * so that none is used twice (datagrams.ts). Default 256 (hours of an honest peer's retries).
   */
  datagramFlowsPerConnection: number;
  /** PKI: first contacts comparing a code at once (the `verifying` state). Default 4. */
  verifyingPeers: number;
  /**
   * PKI: connections of peers whose key is not known yet (HELLO accepted, trust not settled) held
   * at once, in total. Default 64. Known keys are not counted (they settle in one round trip).
   */
  untrustedConnections: number;
  /** …from one source address. Default 8. */
  untrustedPerAddress: number;
  /** PKI: time a peer may stay `verifying` (a person deciding), ms. Default 60 000. */
  verifyTimeout: number;
  /** PKI: first-contact code comparisons started per minute (burst of the same size). Default 6. */
  verificationsPerMinute: number;
}

export const DEFAULT_BUDGETS: Readonly<SessionBudgets> = Object.freeze({
  firstFrameBytes: 2048,
  unidentifiedConnections: 256,
  unidentifiedPerAddress: 64,
  unidentifiedTimeout: 10_000,
  streamOffersPerPeer: 32,
  dialBacksPerPeer: 8,
  streamsPerPeer: 64,
  transfersPerPeer: 4,
  folderEntries: 100_000,
  folderManifestBytes: 16_777_216,
  folderManifestBytesTotal: 67_108_864,
  folderDepth: 64,
  transferIdleTimeout: 20_000,
  transferMinBytes: 65_536,
  dialsPerSecond: 20,
  dialsInFlight: 6,
  dialsInFlightPerAddress: 2,
  dialsInFlightSuspect: 2,
  dialBackoffInitial: 1000,
  dialFailuresBeforeSlow: 3,
  dialBackoffSlow: 60_000,
  absentPeerExpiry: 600_000,
  maxPeerRecords: 4096,
  claimsPerPeer: 4,
  invitationContextBytes: 1024,
  invitationsPending: 16,
  invitationsPerAddress: 4,
  invitationTimeout: 120_000,
  datagramsPerSecond: 10_000,
  datagramBytesPerSecond: 16_777_216,
  datagramFlowsPerConnection: 256,
  verifyingPeers: 4,
  untrustedConnections: 64,
  untrustedPerAddress: 8,
  verifyTimeout: 60_000,
  verificationsPerMinute: 6,
});

export type BudgetName = keyof SessionBudgets;

/** Budgets that are durations in ms (the others are counts or sizes). */
const DURATIONS: ReadonlySet<BudgetName> = new Set<BudgetName>(['unidentifiedTimeout', 'transferIdleTimeout', 'dialBackoffInitial', 'dialBackoffSlow', 'absentPeerExpiry', 'verifyTimeout', 'invitationTimeout']);
/** The longest delay setTimeout keeps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Validates app-given budgets over the defaults. */
export function resolveBudgets(given: Partial<SessionBudgets> | undefined): SessionBudgets {
  const out: SessionBudgets = { ...DEFAULT_BUDGETS };
  if (given === undefined) return out;
  for (const [k, v] of Object.entries(given)) {
    if (!(k in DEFAULT_BUDGETS)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `unknown budget "${k}" (known: ${Object.keys(DEFAULT_BUDGETS).join(', ')})`);
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `budget ${k} must be a positive number, got ${String(v)}`);
    // Durations go to setTimeout, which turns anything above 2^31-1 ms into 1 ms; counts are whole.
    if (DURATIONS.has(k as BudgetName) ? v > MAX_TIMER_MS : !Number.isInteger(v)) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', DURATIONS.has(k as BudgetName) ? `budget ${k} is in ms and at most ${MAX_TIMER_MS} (about 24.8 days), got ${v}` : `budget ${k} must be a whole number, got ${v}`);
    }
    out[k as BudgetName] = v;
  }
  // INVITE (type byte, u32 timeout, u16 length, context) arrives before the inviter is accepted.
  if (out.invitationContextBytes + 7 > out.firstFrameBytes || out.invitationContextBytes > 0xffff) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `budget invitationContextBytes (${out.invitationContextBytes}) must fit firstFrameBytes (${out.firstFrameBytes}) less 7 bytes, and 65535`);
  }
  return out;
}

/** `{session, budget, peer?, address?, limit, detail?}` whenever a budget refuses something. */
export const budgetChannel = channel('peerlink:session:budget');

export interface BudgetEvent {
  budget: BudgetName;
  /** The offending peer's id, when it is known. */
  peer?: string;
  /** The offending remote address, when there is one. */
  address?: string;
  detail?: string;
}

/**
 * Counts refusals per budget for one session (`session.stats.budgets`) and publishes them.
 * One per session, passed to every part that enforces a budget.
 */
export class BudgetLedger {
  readonly limits: SessionBudgets;
  readonly #counts: Partial<Record<BudgetName, number>> = {};
  readonly #session: object;

  constructor(limits: SessionBudgets, session: object) {
    this.limits = limits;
    this.#session = session;
  }

  /** Records one refusal under `budget`. Never throws. */
  exceeded(e: BudgetEvent): void {
    this.#counts[e.budget] = (this.#counts[e.budget] ?? 0) + 1;
    if (budgetChannel.hasSubscribers) budgetChannel.publish({ session: this.#session, limit: this.limits[e.budget], ...e });
  }

  /** Refusals so far, by budget (only budgets that refused something appear). */
  get counts(): Readonly<Partial<Record<BudgetName, number>>> {
    return { ...this.#counts };
  }
}
