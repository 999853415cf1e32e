/**
 * How often a session's control connections exchange keepalives (docs/session.md "Liveness").
 *
 * Keepalives are O(N²) in a full mesh: every pair exchanges a PING and a PONG every interval,
 * so a peer's cost grows with its peer count while nothing else is happening. At 100 peers and
 * the 2 s default, each peer sent ~5 500 packets a minute at idle and the 100 processes of the
 * scale lab spent ~1.9 % of a core each on it (bench/scale/README.md, "Session 11"). So the
 * configured interval holds while a session has at most `rate × interval` peers; beyond that
 * it stretches to peers ÷ rate seconds, so a session takes part in about `rate` exchanges a
 * second whatever its size, and the timeout stretches in proportion (its ratio to the interval
 * is kept: a peer is still declared dead after the same number of missed exchanges). With the
 * defaults (2 s, 6 s, 10 a second) up to 20 peers keep 2 s / 6 s; 100 peers get 9.9 s / 29.7 s.
 *
 * Each side paces itself from its own peer count, so the two ends of a connection may differ.
 * That stays safe: the answering side pings on its own when the pinger's PINGs stop for
 * 1.5 of *its* intervals (keepalive-policy.ts), so each side hears the other within its own
 * timeout whatever the other's pace; a side with fewer peers only spends more of its own rate.
 * Only connected peers' connections count (peer-table.ts activeChannels): a stranger's
 * unidentified connections, handshakes and (pki) keys still being verified cannot stretch our
 * liveness checks. When the pace shrinks, silence from the longer one is judged by the old
 * deadline until something arrives (keepalive-policy.ts repace).
 */

/**
 * The stretch stops here (timeout 90 s with the default ratio): past 300 peers at the default
 * rate the session exchanges more than `rate` a second rather than detect failures later still,
 * and strangers who become peers (security `none`; `pki` with `trustNew`) cannot slow our
 * liveness checks further.
 */
export const MAX_STRETCHED_INTERVAL = 30_000;

export interface KeepalivePaceSettings {
  /** The configured PING period, ms (keepaliveInterval). */
  interval: number;
  /** The configured silence before a peer is dead, ms (keepaliveTimeout). */
  timeout: number;
  /** Keepalive exchanges a second the session aims at in all (keepaliveRate). */
  rate: number;
}

export class KeepalivePace {
  constructor(
    private readonly settings: KeepalivePaceSettings,
    /** Control connections that are a peer's connection now. */
    private readonly peers: () => number,
  ) {}

  /** The PING period now, ms: never past MAX_STRETCHED_INTERVAL (unless configured so). */
  interval(): number {
    const { interval, rate } = this.settings;
    return Math.max(interval, Math.min(MAX_STRETCHED_INTERVAL, Math.round((1000 * this.peers()) / rate)));
  }

  /** The silence after which a peer is dead, at the given interval, ms. */
  timeoutFor(interval: number): number {
    return Math.round((this.settings.timeout * interval) / this.settings.interval);
  }
}
