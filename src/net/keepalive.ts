/**
 * Application-level liveness for message connections: after `interval` of silence a ping
 * goes out; when nothing at all has arrived for `timeout`, the connection is declared dead.
 * TCP alone notices neither a frozen peer (its kernel still ACKs) nor a silently vanished
 * link for many minutes.
 */
import type { ResolvedKeepalive } from './parameters.js';

export class KeepaliveTimer {
  private lastRx = performance.now();
  private lastPing = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly settings: ResolvedKeepalive,
    private readonly ping: (payload: Buffer) => void,
    private readonly dead: (silentFor: number) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    const tick = Math.max(10, Math.min(this.settings.interval, this.settings.timeout) / 4);
    this.timer = setInterval(() => this.check(), tick);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Anything arrived from the peer. */
  received(): void {
    this.lastRx = performance.now();
  }

  /** A pong carrying one of our ping payloads: returns the round trip in ms. */
  rttFrom(payload: Buffer): number | undefined {
    if (payload.length !== 8) return undefined;
    const sent = payload.readDoubleBE(0);
    const rtt = performance.now() - sent;
    return rtt >= 0 && rtt < 3_600_000 ? rtt : undefined;
  }

  private check(): void {
    const now = performance.now();
    const silent = now - this.lastRx;
    if (silent >= this.settings.timeout) {
      this.stop();
      this.dead(silent);
      return;
    }
    if (silent >= this.settings.interval && now - this.lastPing >= this.settings.interval) {
      this.lastPing = now;
      const p = Buffer.allocUnsafe(8);
      p.writeDoubleBE(now, 0);
      this.ping(p);
    }
  }
}
