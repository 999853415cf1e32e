/**
 * Claims on a connected peer's place: a connection claiming a connected peer's id is held
 * while the connection in use is checked, and replaces it only if that check fails. What a
 * held connection sends meanwhile (once WELCOMEd) is queued, bounded, and replayed if the
 * claim is accepted. The peer table decides when a claim is held (dedup.ts).
 */
import { PeerlinkError } from '../errors.js';
import type { BudgetLedger } from './budgets.js';
import type { ControlChannel } from './control-channel.js';
import { checkDeadline } from './dedup.js';
import type { DialTarget } from './dial-target.js';
import type { PeerRecord } from './peer-record.js';
import { ByeReason } from './protocol/messages.js';
import { addressOf } from './channel-report.js';

/** What a held claim (a connection claiming a connected peer's id) carries until it is settled. */
export interface HeldClaim {
  target: DialTarget | undefined;
  /** The generation of a WELCOME that arrived while held (0: none yet; the other side decides). */
  welcome: number;
  /** Messages that followed that WELCOME, replayed in order if the claim is accepted. */
  queue: Array<() => void>;
  bytes: number;
}

/** Messages a held, WELCOMEd connection may queue before it is refused (bytes: maxMessageSize). */
const HELD_MESSAGES = 256;

export interface HeldClaimsHost {
  readonly budgets: BudgetLedger;
  /** The session's maxMessageSize: the bytes a held connection may queue. */
  readonly maxMessageSize: number;
  closing(): boolean;
  trace(ch: ControlChannel, rec: PeerRecord, decision: string, reason?: string): void;
  /** Whether this side decides which of the peer's connections stays (dedup.ts isDecider). */
  decides(rec: PeerRecord): boolean;
  /** Deciding side: `ch` takes the place of `dead`, which failed its liveness check. */
  replace(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined, dead: ControlChannel): void;
  /** A claim whose check is over, decided again without the connection that was checked. */
  reconsider(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined): void;
  /** Reports the peer's state if it changed. */
  update(rec: PeerRecord): void;
}

export class HeldClaims {
  readonly #host: HeldClaimsHost;
  readonly #held = new Map<ControlChannel, HeldClaim>();

  constructor(host: HeldClaimsHost) {
    this.#host = host;
  }

  get(ch: ControlChannel): HeldClaim | undefined {
    return this.#held.get(ch);
  }

  delete(ch: ControlChannel): void {
    this.#held.delete(ch);
  }

  /**
   * Holds a claim on a connected peer's place and checks the connection in use with a PING
   * round trip (one check per connection at a time; claims arriving meanwhile share it).
   */
  hold(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined): void {
    const active = rec.active as ControlChannel;
    const budgets = this.#host.budgets;
    if (!rec.claims.has(ch)) {
      if (rec.claims.size >= budgets.limits.claimsPerPeer) {
        budgets.exceeded({ budget: 'claimsPerPeer', peer: rec.key, ...addressOf(ch), detail: 'connection claiming a connected peer refused' });
        this.#host.trace(ch, rec, 'duplicate', 'too many claims being checked');
        ch.close(ByeReason.DUPLICATE, 'already connected');
        return;
      }
      rec.claims.add(ch);
      if (!this.#held.has(ch)) this.#held.set(ch, { target, welcome: 0, queue: [], bytes: 0 });
    }
    this.#host.trace(ch, rec, 'held', 'checking the connection in use');
    if (rec.checking === active) return;
    rec.checking = active;
    void active.roundTrip(checkDeadline(active.rttMs)).then((alive) => {
      if (rec.checking === active) rec.checking = undefined;
      this.#settle(rec, active, alive);
    });
  }

  /** The check of `checked` is over: its claims are refused (it answered) or decided again without it. */
  #settle(rec: PeerRecord, checked: ControlChannel, alive: boolean): void {
    const claims = [...rec.claims];
    rec.claims.clear();
    if (this.#host.closing()) return;
    const stillActive = rec.active === checked && !checked.closed;
    if (alive && stillActive) {
      for (const ch of claims) {
        this.#held.delete(ch);
        if (ch.closed) continue;
        this.#host.trace(ch, rec, 'duplicate', 'the connection in use answered its liveness check');
        ch.close(ByeReason.DUPLICATE, 'already connected');
      }
      this.#host.update(rec);
      return;
    }
    const open = claims.filter((c) => !c.closed);
    if (stillActive) {
      this.#host.trace(checked, rec, 'failed check', `no answer to a liveness check within ${checkDeadline(checked.rttMs)} ms`);
      const first = open[0];
      if (first && this.#host.decides(rec)) {
        // Presumed dead, like a failed keepalive: the first claimant takes its place at once.
        open.shift();
        const held = this.#held.get(first);
        this.#held.delete(first);
        this.#host.replace(rec, first, held?.target, checked);
      } else checked.destroy(new PeerlinkError('ERR_KEEPALIVE_TIMEOUT', 'the peer did not answer a liveness check'));
    }
    for (const ch of open) this.#host.reconsider(rec, ch, this.#held.get(ch)?.target);
  }

  /** Queues a message that arrived on a held, WELCOMEd connection; bounded, or the claim is refused. */
  enqueue(ch: ControlChannel, held: HeldClaim, bytes: number, replay: () => void): void {
    held.bytes += bytes;
    if (held.queue.length >= HELD_MESSAGES || held.bytes > this.#host.maxMessageSize) {
      const rec = ch.record;
      this.#host.budgets.exceeded({ budget: 'claimsPerPeer', ...(rec ? { peer: rec.key } : {}), ...addressOf(ch), detail: 'too much sent on a connection held for a liveness check' });
      ch.close(ByeReason.DUPLICATE, 'already connected');
      return;
    }
    held.queue.push(replay);
  }
}
