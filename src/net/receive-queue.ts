/**
 * The receive side of a Connection: a bounded queue of chunks (byte stream) or messages,
 * and the readers waiting on it. Above the high-water mark the transport is paused, so a
 * fast sender ends up waiting on its own send() promises instead of filling our memory.
 */
import { PeerlinkError } from '../errors.js';

/** Queued items (messages, pieces or chunks) above which the transport is paused, whatever their size. */
const ITEM_HIGH_WATER = 65_536;

/** A piece of a message (partial delivery); `complete` is set on its last piece. */
export interface MessagePart {
  data: Buffer;
  complete: boolean;
}

interface Waiter {
  /** 'part': a message piece (partial delivery); 'message' wants a whole message. */
  kind: 'bytes' | 'message' | 'part';
  min: number;
  max: number;
  resolve: (b: Buffer | null) => void;
  reject: (e: PeerlinkError) => void;
}

export class ReceiveQueue {
  private items: Buffer[] = [];
  /** Per item: false for a piece of a message that continues in the next item (partial delivery). */
  private whole: boolean[] = [];
  private head = 0;
  /** Whether the item handed out last (by shift or directly to a waiter) ended its message. */
  lastComplete = true;
  private bytes = 0;
  private waiters: Waiter[] = [];
  private ended = false;
  private error: PeerlinkError | undefined;
  private paused = false;

  constructor(
    private readonly highWater: number,
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {}

  get bufferedBytes(): number {
    return this.bytes;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Queues bytes or a message; `complete` = false for a piece of a message that goes on. */
  push(b: Buffer, complete = true): void {
    if (this.ended) return;
    // A waiting reader takes the item directly, without queueing.
    if (this.waiters.length > 0 && this.length === 0) {
      const w = this.waiters[0] as Waiter;
      if (w.kind !== 'bytes' || b.length >= w.min) {
        this.waiters.shift();
        if (w.kind === 'bytes' && b.length > w.max) {
          w.resolve(b.subarray(0, w.max));
          b = b.subarray(w.max);
        } else {
          this.lastComplete = complete;
          w.resolve(b);
          return;
        }
      }
    }
    this.items.push(b);
    this.whole.push(complete);
    this.bytes += b.length;
    if (this.waiters.length > 0) this.serve();
    // Items count too: a flood of empty messages holds no bytes but still costs memory.
    if (!this.paused && (this.bytes >= this.highWater || this.length >= ITEM_HIGH_WATER)) {
      this.paused = true;
      this.pause();
    }
  }

  /** Whether a reader is waiting for a whole message (receiveMessage). */
  get awaitingMessage(): boolean {
    return this.waiters.some((w) => w.kind === 'message');
  }

  /** The peer finished: readers get what is left, then null. */
  end(): void {
    this.ended = true;
    this.serve();
  }

  /** The connection failed or was cancelled: readers get what is left, then the error (or null). */
  close(err: PeerlinkError | undefined, discard: boolean): void {
    this.ended = true;
    if (err) this.error = err;
    if (discard) {
      this.items = [];
      this.whole = [];
      this.head = 0;
      this.bytes = 0;
    }
    this.serve();
  }

  /** A queued item now, null at the end, undefined when nothing is queued; throws the failure. */
  tryNext(): Buffer | null | undefined {
    if (this.length > 0) return this.shift();
    if (this.ended) {
      if (this.error) throw this.error;
      return null;
    }
    return undefined;
  }

  nextMessage(): Promise<Buffer | null> {
    if (this.length > 0) return Promise.resolve(this.shift());
    if (this.ended) return this.error ? Promise.reject(this.error) : Promise.resolve(null);
    return new Promise((resolve, reject) => this.waiters.push({ kind: 'message', min: 0, max: 0, resolve, reject }));
  }

  /** The next message piece (a whole message is one complete piece), or null at the end. */
  nextPart(): Promise<MessagePart | null> {
    if (this.length > 0) {
      const data = this.shift();
      return Promise.resolve({ data, complete: this.lastComplete });
    }
    if (this.ended) return this.error ? Promise.reject(this.error) : Promise.resolve(null);
    return new Promise((resolve, reject) =>
      // lastComplete is set just before a waiter is resolved, so it is read here synchronously.
      this.waiters.push({ kind: 'part', min: 0, max: 0, resolve: (b) => resolve(b === null ? null : { data: b, complete: this.lastComplete }), reject }),
    );
  }

  nextBytes(min: number, max: number): Promise<Buffer | null> {
    if (this.waiters.length === 0) {
      const b = this.takeBytes(min, max);
      if (b) return Promise.resolve(b);
      if (this.ended && this.bytes === 0) return this.error ? Promise.reject(this.error) : Promise.resolve(null);
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ kind: 'bytes', min, max, resolve, reject });
      this.serve();
    });
  }

  /** Everything still queued (for handing a byte stream over to a Duplex). */
  drain(): Buffer[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.whole = [];
    this.head = 0;
    this.bytes = 0;
    return out;
  }

  private shift(): Buffer {
    const b = this.items[this.head] as Buffer;
    this.lastComplete = this.whole[this.head] as boolean;
    this.items[this.head] = undefined as unknown as Buffer;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.whole = this.whole.slice(this.head);
      this.head = 0;
    }
    this.bytes -= b.length;
    this.maybeResume();
    return b;
  }

  private maybeResume(): void {
    if (this.paused && this.bytes <= this.highWater / 2 && this.length <= ITEM_HIGH_WATER / 2) {
      this.paused = false;
      this.resume();
    }
  }

  private takeBytes(min: number, max: number): Buffer | undefined {
    if (this.bytes === 0) return undefined;
    if (this.bytes < min && !this.ended) return undefined;
    const first = this.items[this.head] as Buffer;
    if (first.length >= max) {
      if (first.length === max) return this.shift();
      this.items[this.head] = first.subarray(max);
      this.bytes -= max;
      this.maybeResume();
      return first.subarray(0, max);
    }
    const want = Math.min(max, this.bytes);
    if (first.length === want) return this.shift();
    const parts: Buffer[] = [];
    let got = 0;
    while (got < want) {
      const c = this.items[this.head] as Buffer;
      if (got + c.length <= want) {
        parts.push(this.shift());
        got += c.length;
      } else {
        const k = want - got;
        parts.push(c.subarray(0, k));
        this.items[this.head] = c.subarray(k);
        this.bytes -= k;
        got += k;
      }
    }
    this.maybeResume();
    return Buffer.concat(parts, got);
  }

  private serve(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0] as Waiter;
      let v: Buffer | undefined;
      if (w.kind !== 'bytes') v = this.length > 0 ? this.shift() : undefined;
      else v = this.takeBytes(w.min, w.max);
      if (v !== undefined) {
        this.waiters.shift();
        w.resolve(v);
        continue;
      }
      if (this.ended && this.length === 0) {
        this.waiters.shift();
        if (this.error) w.reject(this.error);
        else w.resolve(null);
        continue;
      }
      break;
    }
  }
}
