/**
 * The scale lab (bench/scale, and the scale tests): N hosts — network namespaces on one
 * bridge (netns.ts) — each running one PeerSession in its own Node process (scale-peer.ts; or
 * `sessionsPerHost` sessions sharing one dnssd engine),
 * all in one star session with a PSK. Every namespace shares this machine's host name, as a
 * room of cloned boards does, so every engine claims the same `<host>.local` at start.
 *
 * What it measures: time from the last `ready` to a full mesh, missing and duplicate
 * connections, mDNS packets and bytes on the bridge per second (mdns-counter.ts, in the
 * switch namespace), per-peer RSS / heap / CPU / fds / timers and eth0 counters, fan-out
 * delivery times; and it can make peers leave (SIGKILL or graceful) and join (new hosts).
 */
import { fileURLToPath } from 'node:url';
import { createLab, LAB_V4_PREFIX, type Lab } from './netns.js';
import { parseJsonLine, sleep, waitForLine, type TrackedProcess } from './proc.js';
import type { ScaleCommand, ScalePeerConfig } from './scale-peer.js';

const PEER_SCRIPT = fileURLToPath(new URL('./scale-peer.js', import.meta.url));
const COUNTER_SCRIPT = fileURLToPath(new URL('./mdns-counter.js', import.meta.url));

export type Json = Record<string, unknown> & { ev?: string; t: number };

export interface PeerStatus {
  id: string;
  connected: string[];
  unique: number;
  stats: { controlConnections: number; activeConnections: number; handshakes: number; streams: number; targets: number; peers: number; budgets: Record<string, number> };
}

export interface PeerMetrics {
  /** Measured after two full GCs (metrics with `gc` on a peer run with --expose-gc). */
  afterGc?: boolean;
  /** RSS after those GCs and a malloc_trim (null: not measured). */
  rssTrimmed?: number | null;
  /** Event-loop delay since the peer started, ms (monitorEventLoopDelay). */
  loopDelayMs?: { p99: number; max: number };
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  cpuUser: number;
  cpuSystem: number;
  uptime: number;
  fds: number;
  resources: Record<string, number>;
  /** Live timers and immediates (with ScaleLabOptions.countTimers), else null. */
  timers: number | null;
  eth0: { rxBytes: number; rxPackets: number; txBytes: number; txPackets: number } | null;
  connected: number;
  /** CPU (µs) spent by the time the modules were loaded, and when the session was ready. */
  cpuAtLoad?: { user: number; system: number };
  cpuAtReady?: { user: number; system: number } | null;
  /** UDP (mDNS) datagrams received in the host's namespace: at ready, and now. */
  udpAtReady?: number | null;
  udpReceived?: number | null;
  /** …and dropped at a full socket receive buffer (RcvbufErrors). */
  udpDropped?: number | null;
}

export interface MdnsSecond {
  s: number;
  p4: number;
  b4: number;
  p6: number;
  b6: number;
  q: number;
  r: number;
}

export interface MeshCheck {
  /** Sessions whose connected set is not exactly the others. */
  missing: number;
  /** Connections beyond one per pair (more active control connections than peers, or a peer listed twice). */
  duplicates: number;
  /**
   * Control connections still in their handshake at the check (a dial that will end as a
   * duplicate, or one to a peer that just came back): not connections, so not duplicates.
   */
  handshaking: number;
  /** Connected ids that are not live peers (ghosts of peers that left). */
  stale: number;
  /** The first few problems, in words. */
  problems: string[];
}

/**
 * One session of the lab: a host's process, or with ScaleLabOptions.sessionsPerHost > 1 one
 * of the sessions that process holds (`slot`; its lines carry `s`, scale-peer.ts).
 */
export class ScalePeer {
  id = '';
  readyAt = 0;
  /** When the process was started (ms since the epoch). */
  readonly startedAt = Date.now();
  constructor(
    readonly host: number,
    readonly proc: TrackedProcess,
    readonly slot = 0,
    /** Sessions in this peer's process. */
    readonly sessions = 1,
  ) {}

  /** `h12`, or `h12.3` for slot 3 of a process with several sessions. */
  get label(): string {
    return this.sessions > 1 ? `h${this.host}.${this.slot}` : `h${this.host}`;
  }

  get alive(): boolean {
    return this.proc.running;
  }

  /** Whether a line of this peer's process is about this session (process-wide lines count as slot 0's). */
  mine(v: Json | undefined): v is Json {
    return v !== undefined && (this.sessions === 1 || (v.s ?? 0) === this.slot);
  }

  events(since = 0): Json[] {
    const out: Json[] = [];
    for (let i = since; i < this.proc.stdoutLines.length; i++) {
      const v = parseJsonLine<Json>(this.proc.stdoutLines[i] as string);
      if (this.mine(v)) out.push(v);
    }
    return out;
  }

  /** Sends a command and resolves with the first `ev` line after it. */
  async request<T>(c: ScaleCommand, ev: string, timeoutMs = 20_000): Promise<T & Json> {
    const since = this.proc.stdoutLines.length;
    this.proc.writeLine(JSON.stringify(this.sessions > 1 ? { ...c, s: this.slot } : c));
    const line = await waitForLine(this.proc, (l) => {
      const v = parseJsonLine<Json>(l);
      return this.mine(v) && v.ev === ev;
    }, timeoutMs, { since, what: `${ev} from ${this.label}` });
    return parseJsonLine<T & Json>(line) as T & Json;
  }

  /** Peers whose last reported state is `connecting`, with how long they have been. */
  stuckConnecting(now = Date.now()): Array<{ peer: string; ms: number }> {
    const last = new Map<string, Json>();
    for (const e of this.events()) if (e.ev === 'peer') last.set(e.peer as string, e);
    return [...last.values()].filter((e) => e.state === 'connecting').map((e) => ({ peer: e.peer as string, ms: now - e.t }));
  }

  /** `connected` events per peer id (more than one per peer while a mesh forms is a flap). */
  connectCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const e of this.events()) if (e.ev === 'peer' && e.state === 'connected') m.set(e.peer as string, (m.get(e.peer as string) ?? 0) + 1);
    return m;
  }
}

export interface ScaleLabOptions {
  /** Hosts built at once (more can be added later with addHost). */
  hosts: number;
  service?: string;
  psk?: string;
  tag?: string;
  includePeerIdInTxt?: boolean;
  /** Count mDNS packets on the bridge (default true). */
  countMdns?: boolean;
  /** Peers count their live timers (an async hook; a little slower). */
  countTimers?: boolean;
  /** Node flags for the peer processes (e.g. --max-semi-space-size). */
  nodeArgs?: string[];
  /** Session budgets for every peer, other than the defaults (e.g. `{ dialsInFlight: 3 }`). */
  budgets?: Record<string, number>;
  /** 'bundle': peers import dist/src/bundle.js, the package's entry point (scale-peer.ts). */
  entry?: 'bundle' | 'files';
  /** Session timing options for every peer (e.g. `{ keepaliveInterval: 10000 }`). */
  timing?: Record<string, number>;
  /** Extra Node flags for some hosts only (e.g. `--cpu-prof --cpu-prof-dir=…` on a sample). */
  hostNodeArgs?: (host: number) => string[];
  /**
   * Sessions per host process, sharing one dnssd engine (default 1: one session per process,
   * its own engine). With k > 1, `hosts` namespaces hold hosts × k sessions; leave and churn
   * (which end a whole process) are refused.
   */
  sessionsPerHost?: number;
}

export class ScaleLab {
  /** Running sessions by label (`h3`, or `h3.1` with several sessions per host). */
  readonly peers = new Map<string, ScalePeer>();
  /** Every peer ever started, in order (for diagnostics after churn). */
  readonly everyone: ScalePeer[] = [];
  private readonly leaving = new Set<ScalePeer>();
  private counter: TrackedProcess | undefined;
  private readonly cfg: ScalePeerConfig;

  private constructor(
    readonly lab: Lab,
    readonly opts: ScaleLabOptions,
  ) {
    this.cfg = {
      service: opts.service ?? 'scale',
      psk: opts.psk ?? '5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e',
      interfaces: ['eth0'],
      ...(opts.includePeerIdInTxt ? { includePeerIdInTxt: true } : {}),
      ...(opts.countTimers ? { countTimers: true } : {}),
      ...(opts.budgets ? { budgets: opts.budgets } : {}),
      ...(opts.timing ? { timing: opts.timing } : {}),
      ...(opts.entry ? { entry: opts.entry } : {}),
      ...(this.perHost > 1 ? { sessions: this.perHost } : {}),
    };
  }

  /** Sessions per host process (ScaleLabOptions.sessionsPerHost). */
  get perHost(): number {
    return Math.max(1, Math.floor(this.opts.sessionsPerHost ?? 1));
  }

  static async create(opts: ScaleLabOptions): Promise<ScaleLab> {
    const lab = await createLab({ hosts: opts.hosts, tag: opts.tag ?? 'scale' });
    const s = new ScaleLab(lab, opts);
    if (opts.countMdns !== false) await s.startCounter();
    return s;
  }

  private async startCounter(): Promise<void> {
    await this.lab.ip(this.lab.switchNs, ['addr', 'add', `${LAB_V4_PREFIX}254/24`, 'dev', 'br0']);
    await this.lab.ip(this.lab.switchNs, ['route', 'add', '224.0.0.0/4', 'dev', 'br0']);
    this.counter = this.lab.spawnNode(this.lab.switchNs, COUNTER_SCRIPT, [`${LAB_V4_PREFIX}254`, 'br0'], { label: 'mdns counter' });
    await waitForLine(this.counter, (l) => l.includes('"ready"'), 30_000, { what: 'mdns counter ready' });
  }

  /** mDNS traffic on the bridge, one entry per second since the counter started. */
  mdnsSeconds(): MdnsSecond[] {
    if (!this.counter) return [];
    return this.counter.stdoutLines.map((l) => parseJsonLine<MdnsSecond>(l)).filter((v): v is MdnsSecond => v !== undefined && typeof v.s === 'number');
  }

  /** The counter's current second (for windows: mdnsRate(from, to)). */
  mdnsNow(): number {
    const s = this.mdnsSeconds();
    return s.length > 0 ? (s[s.length - 1] as MdnsSecond).s : 0;
  }

  /** Packets and bytes per minute on the bridge over counter seconds [from, to). */
  mdnsRate(from: number, to: number): { packetsPerMin: number; bytesPerMin: number; seconds: number } {
    const w = this.mdnsSeconds().filter((x) => x.s >= from && x.s < to);
    if (w.length === 0) return { packetsPerMin: 0, bytesPerMin: 0, seconds: 0 };
    const p = w.reduce((a, x) => a + x.p4 + x.p6, 0);
    const b = w.reduce((a, x) => a + x.b4 + x.b6, 0);
    return { packetsPerMin: (p * 60) / w.length, bytesPerMin: (b * 60) / w.length, seconds: w.length };
  }

  /** Starts the process of host `h` (1-based): its session, or its `sessionsPerHost` sessions. */
  startHost(h: number): ScalePeer[] {
    const args = [...(this.opts.nodeArgs ?? []), ...(this.opts.hostNodeArgs?.(h) ?? []), PEER_SCRIPT, JSON.stringify(this.cfg)];
    const proc = this.lab.spawn(h, process.execPath, args, { stdin: true, label: `h${h}` });
    // every session of the process waits on its lines at once (ready, status, fan-out)
    if (this.perHost > 1) proc.setMaxListeners(10 + 4 * this.perHost);
    const ps: ScalePeer[] = [];
    for (let slot = 0; slot < this.perHost; slot++) {
      const p = new ScalePeer(h, proc, slot, this.perHost);
      this.peers.set(p.label, p);
      this.everyone.push(p);
      ps.push(p);
    }
    return ps;
  }

  /** Starts one peer on host `h` (1-based; one session per process). */
  startPeer(h: number): ScalePeer {
    if (this.perHost > 1) throw new Error('startPeer: this lab runs several sessions per host (startHost)');
    return this.startHost(h)[0] as ScalePeer;
  }

  async waitReady(p: ScalePeer, timeoutMs = 120_000): Promise<void> {
    const line = await waitForLine(p.proc, (l) => {
      const v = parseJsonLine<Json>(l);
      return p.mine(v) && v.ev === 'ready';
    }, timeoutMs, { what: `${p.label} ready` });
    const r = parseJsonLine<Json>(line) as Json;
    p.id = r.id as string;
    p.readyAt = r.t;
  }

  /** Starts a peer on every host (`hosts` list, default all), together, and waits until each is ready. */
  async startAll(hosts: number[] = this.lab.hosts.map((h) => h.index), timeoutMs = 180_000): Promise<ScalePeer[]> {
    const ps = hosts.flatMap((h) => this.startHost(h));
    await Promise.all(ps.map((p) => this.waitReady(p, timeoutMs)));
    return ps;
  }

  /** Adds a host to the bridge; returns its index. */
  async addHost(): Promise<number> {
    return (await this.lab.addHost()).index;
  }

  /** Peers running, ready, and not leaving. */
  live(): ScalePeer[] {
    return [...this.peers.values()].filter((p) => p.alive && p.id !== '' && !this.leaving.has(p));
  }

  async statuses(peers = this.live(), timeoutMs = 30_000): Promise<Map<ScalePeer, PeerStatus>> {
    const got = await Promise.all(peers.map(async (p) => [p, await p.request<PeerStatus>({ cmd: 'status' }, 'status', timeoutMs)] as const));
    return new Map(got);
  }

  /** `gc`: each peer runs two full GCs first (peers started with --expose-gc; `afterGc` says whether it did). */
  async metrics(peers = this.live(), timeoutMs = 30_000, gc = false): Promise<Map<ScalePeer, PeerMetrics>> {
    const got = await Promise.all(peers.map(async (p) => [p, await p.request<PeerMetrics>({ cmd: 'metrics', ...(gc ? { gc } : {}) }, 'metrics', timeoutMs)] as const));
    return new Map(got);
  }

  /** Compares every status with the live set: each peer connected to exactly the others, once. */
  static check(st: Map<ScalePeer, PeerStatus>, liveIds: readonly string[]): MeshCheck {
    const res: MeshCheck = { missing: 0, duplicates: 0, handshaking: 0, stale: 0, problems: [] };
    const live = new Set(liveIds);
    for (const [p, s] of st) {
      const want = liveIds.filter((id) => id !== s.id);
      const have = new Set(s.connected);
      const lacking = want.filter((id) => !have.has(id));
      const extra = s.connected.filter((id) => !live.has(id));
      const dup = (s.connected.length - s.unique) + Math.max(0, s.stats.activeConnections - s.connected.length);
      res.handshaking += s.stats.controlConnections - s.stats.activeConnections;
      res.missing += lacking.length;
      res.stale += extra.length;
      res.duplicates += dup;
      if ((lacking.length > 0 || extra.length > 0 || dup > 0) && res.problems.length < 8) {
        res.problems.push(`${p.label}: ${s.connected.length}/${want.length} connected, ${lacking.length} missing, ${extra.length} stale, ${s.stats.activeConnections} active control connections (+${s.stats.controlConnections - s.stats.activeConnections} in their handshake)`);
      }
    }
    return res;
  }

  /** Polls until every live peer is connected to exactly the other live peers (or the time is up). */
  async waitMesh(timeoutMs: number, intervalMs = 1000): Promise<{ ok: boolean; at: number; check: MeshCheck }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const peers = this.live();
      const st = await this.statuses(peers);
      const at = Date.now();
      const c = ScaleLab.check(st, peers.map((p) => p.id));
      if ((c.missing === 0 && c.duplicates === 0 && c.stale === 0) || at > deadline) return { ok: c.missing === 0 && c.duplicates === 0 && c.stale === 0, at, check: c };
      await sleep(intervalMs);
    }
  }

  /** One peer sends a message to all its connected peers; resolves with each receiver's delay (ms). */
  async fanout(from: ScalePeer, timeoutMs = 30_000): Promise<{ to: number; delays: number[]; last: number }> {
    const tag = `f${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const receivers = this.live().filter((p) => p !== from);
    const marks = new Map(receivers.map((p) => [p, p.proc.stdoutLines.length]));
    const sent = await from.request<{ to: number; sentAt: number }>({ cmd: 'fanout', tag }, 'fanout-sent', timeoutMs);
    const delays = await Promise.all(
      receivers.map(async (p) => {
        const line = await waitForLine(p.proc, (l) => {
          const v = parseJsonLine<Json>(l);
          return p.mine(v) && v.ev === 'fanout-recv' && v.tag === tag;
        }, timeoutMs, { since: marks.get(p) ?? 0, what: `fan-out at ${p.label}` }).catch(() => undefined);
        return line ? (parseJsonLine<Json>(line) as Json).t - sent.sentAt : Number.NaN;
      }),
    );
    const ok = delays.filter((d) => Number.isFinite(d));
    return { to: sent.to, delays, last: ok.length > 0 ? Math.max(...ok) : Number.NaN };
  }

  /** A peer leaves: `kill` is SIGKILL (no BYE, no goodbye), `graceful` SIGTERM (session.close()). */
  async leave(p: ScalePeer, how: 'kill' | 'graceful'): Promise<void> {
    if (p.sessions > 1) throw new Error('leave: this lab runs several sessions per host process; one cannot leave alone');
    this.leaving.add(p);
    p.proc.signal(how === 'kill' ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => p.proc.signal('SIGKILL'), 10_000);
    await p.proc.exited;
    clearTimeout(timer);
    this.leaving.delete(p);
    if (this.peers.get(p.label) === p) this.peers.delete(p.label);
  }

  /**
   * Churn for `seconds`: every second a random live peer (never one in `keep`) leaves — SIGKILL
   * and graceful in turn — and a new peer joins, in a namespace a peer left (a rebooted board)
   * or a new one. `onTick` runs once a second (sampling). Resolves once every joined peer is ready.
   */
  async churn(seconds: number, keep: readonly ScalePeer[], onTick?: (elapsedMs: number) => Promise<void>): Promise<{ kills: number; graceful: number; joins: number }> {
    const free: number[] = [];
    const leaving: Array<Promise<void>> = [];
    const joining: Array<Promise<void>> = [];
    let kills = 0;
    let graceful = 0;
    let joins = 0;
    const t0 = Date.now();
    for (let tick = 0; Date.now() - t0 < seconds * 1000; tick++) {
      const tickStart = Date.now();
      // not one already leaving (a graceful close takes a moment): its namespace would be freed twice
      const candidates = this.live().filter((p) => !keep.includes(p) && !this.leaving.has(p));
      const victim = candidates[Math.floor(Math.random() * candidates.length)];
      if (victim) {
        const how = tick % 2 === 0 ? 'kill' : 'graceful';
        if (how === 'kill') kills++;
        else graceful++;
        leaving.push(this.leave(victim, how).then(() => void free.push(victim.host)));
      }
      const h = free.shift() ?? (await this.addHost());
      const p = this.startPeer(h);
      joins++;
      joining.push(this.waitReady(p).catch(() => undefined));
      if (onTick) await onTick(Date.now() - t0);
      await sleep(Math.max(0, 1000 - (Date.now() - tickStart)));
    }
    await Promise.all([...leaving, ...joining]);
    return { kills, graceful, joins };
  }

  async teardown(): Promise<void> {
    await this.lab.teardown();
  }
}

/** Median and maximum of a list of numbers. */
export function summary(xs: readonly number[]): { min: number; median: number; max: number; mean: number } {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN, mean: Number.NaN };
  return { min: s[0] as number, median: s[Math.floor(s.length / 2)] as number, max: s[s.length - 1] as number, mean: s.reduce((a, b) => a + b, 0) / s.length };
}
