/**
 * Replies we owe a peer on a control connection (PONG, STREAM_REJECT, ...): messages the
 * peer makes us send by asking, not messages our app chose to send. App sends wait for the
 * transport (end-to-end backpressure); nothing makes a peer wait for our replies, so a peer
 * that asks without reading would have us queue one reply (and one pending promise) per
 * request. Here (docs/security.md "Replies we owe"):
 *
 * - a reply goes out at once while the transport accepts it (its send returns RESOLVED);
 * - while one is pending (not yet accepted), later replies are owed: a reply with a coalescing
 *   key replaces the owed one with the same key (only the latest PING is answered), the
 *   others wait in order, at most `queueLimit` of them (more are dropped: the asker times out);
 * - after `backlogLimit` requests while a reply is pending, `backedUp` is set: the owner stops
 *   reading until the pending reply is accepted (`whenAccepted()`), and drops the peer if that
 *   takes longer than its keepalive window (`pendingFor`).
 *
 * App data never goes through here, so two peers bulk-sending to each other cannot deadlock on
 * it: honest peers ask for replies once per keepalive interval, far below the backlog limit.
 */
import { RESOLVED } from '../net/channel.js';

export interface ReplyQueueOptions {
  /** Requests while a reply is pending after which reading stops. */
  backlogLimit: number;
  /** Owed replies without a coalescing key kept while one is pending. */
  queueLimit: number;
  /** Clock, ms (injected for tests). */
  now?: () => number;
}

interface Owed<T> {
  key: string | undefined;
  reply: T;
}

export class ReplyQueue<T> {
  /** Set while the peer asked for `backlogLimit` replies since the pending one: stop reading. */
  backedUp = false;
  /** Replies not sent (coalesced or over the queue limit) since this queue was made. */
  dropped = 0;
  readonly #send: (reply: T) => Promise<void>;
  readonly #backlogLimit: number;
  readonly #queueLimit: number;
  readonly #now: () => number;
  #pending: Promise<void> | undefined;
  #pendingSince = 0;
  #requests = 0;
  #owed: Array<Owed<T>> = [];
  #accepted: Promise<void> | undefined;
  #closed = false;

  constructor(send: (reply: T) => Promise<void>, options: ReplyQueueOptions) {
    this.#send = send;
    this.#backlogLimit = options.backlogLimit;
    this.#queueLimit = options.queueLimit;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Whether a reply is waiting for the transport to accept it. */
  get pending(): boolean {
    return this.#pending !== undefined;
  }

  /** Milliseconds the pending reply has waited (0 when none is pending). */
  get pendingFor(): number {
    return this.#pending === undefined ? 0 : this.#now() - this.#pendingSince;
  }

  /** Replies owed (not sent yet). */
  get owed(): number {
    return this.#owed.length;
  }

  /** A request arrived for which we owe `reply`; `key` coalesces it with an owed one of that key. */
  reply(reply: T, key?: string): void {
    if (this.#closed) return;
    if (this.#pending === undefined) {
      this.#sendNow(reply);
      return;
    }
    this.#requests++;
    if (this.#requests >= this.#backlogLimit) this.backedUp = true;
    if (key !== undefined) {
      const same = this.#owed.find((o) => o.key === key);
      if (same) {
        same.reply = reply;
        this.dropped++;
        return;
      }
    }
    if (this.#owed.length >= this.#queueLimit) {
      this.dropped++;
      return;
    }
    this.#owed.push({ key, reply });
  }

  /** Resolves once no reply is pending (at once when none is), or the queue is closed. */
  whenAccepted(): Promise<void> {
    if (this.#pending === undefined) return RESOLVED;
    return (this.#accepted ??= this.#pending.then(
      () => undefined,
      () => undefined,
    ));
  }

  /** The connection is gone: nothing more is sent. */
  close(): void {
    this.#closed = true;
    this.#owed = [];
  }

  #sendNow(reply: T): void {
    let p: Promise<void>;
    try {
      p = this.#send(reply);
    } catch {
      return;
    }
    if (p === RESOLVED) return;
    this.#pending = p;
    this.#pendingSince = this.#now();
    this.#requests = 0;
    const done = (): void => {
      if (this.#pending !== p) return;
      this.#pending = undefined;
      this.#accepted = undefined;
      this.#requests = 0;
      this.backedUp = false;
      // Owed replies go out in order until one is pending again.
      while (this.#pending === undefined && !this.#closed) {
        const next = this.#owed.shift();
        if (next === undefined) break;
        this.#sendNow(next.reply);
      }
    };
    // A failed send means the connection failed, which its owner learns and reports elsewhere.
    p.then(done, () => {
      this.#closed = true;
      done();
    });
  }
}
