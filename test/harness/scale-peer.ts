/**
 * One host of the scale lab (scale-lab.ts): a PeerSession in this process (or `sessions` of
 * them sharing one dnssd engine), which runs inside one lab namespace. Reports JSON lines on stdout and obeys JSON commands on stdin.
 *
 *   node scale-peer.js '<ScalePeerConfig json>'
 *
 * Output: {"ev":"ready"} {"ev":"advertised"} {"ev":"peer"} {"ev":"fanout-recv"} {"ev":"status"}
 * {"ev":"metrics"} {"ev":"closed"} {"ev":"fatal"}, and for diagnosis {"ev":"conn"} {"ev":"budget"}
 * {"ev":"peerError"} {"ev":"conflict"} {"ev":"registration"} {"ev":"found"} {"ev":"lost"}
 * {"ev":"dial"} (outgoing connection states) {"ev":"rejected"} (listener refusals); metrics carry
 * the event-loop delay since start (`loopDelayMs`); every line has `t` (ms since the epoch:
 * every host of a lab shares this machine's clock, so times compare across hosts).
 *
 * Imports only what a session needs (src/session), or with `entry: 'bundle'` the package's entry
 * point (dist/src/bundle.js) as an app does: what it costs in memory is what an app pays.
 */
import { createHook } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { batchOutput, out, readCommands } from './fixture-io.js';
import type { PeerID } from '../../src/session/peer-id.js';

export interface ScalePeerConfig {
  service: string;
  psk: string;
  /** Display name (default: the library's default, from the machine's host name). */
  name?: string;
  interfaces?: string[];
  /** Put the peer id in TXT (off by default, as in the library). */
  includePeerIdInTxt?: boolean;
  /** Count live timers and immediates (ref'd or not) with an async hook, for leak checks. */
  countTimers?: boolean;
  /** Session budgets other than the defaults (to compare settings in the lab). */
  budgets?: Record<string, number>;
  /** 'bundle': import the package's entry point (dist/src/bundle.js, as apps and bench/scale/memory.js do); default the session's files. */
  entry?: 'bundle' | 'files';
  /** Session timing options other than the defaults (keepaliveInterval, connectionTimeout …), to compare settings. */
  timing?: Record<string, number>;
  /** Sessions in this process, sharing one dnssd engine (default 1: one session, its own engine). */
  sessions?: number;
}

export type ScaleCommand =
  | { cmd: 'status'; s?: number }
  | { cmd: 'metrics'; gc?: boolean; s?: number }
  | { cmd: 'fanout'; tag: string; size?: number; s?: number }
  | { cmd: 'close'; s?: number };

const cfg = JSON.parse(process.argv[2] ?? '{}') as ScalePeerConfig;
batchOutput();
const lib = cfg.entry === 'bundle' ? ((await import(new URL('../../src/bundle.js', import.meta.url).href)) as typeof import('../../src/index.js')) : undefined;
const { PeerSession } = lib ?? (await import('../../src/session/index.js'));
/** Sessions in this process (ScalePeerConfig.sessions). */
const count = Math.max(1, Math.floor(cfg.sessions ?? 1));
const multi = count > 1;
const Mdns = multi ? (lib ?? (await import('../../src/dnssd/index.js'))).Mdns : undefined;

/** CPU spent by the time the modules were loaded (ESM evaluates every import before this body). */
const cpuAtLoad = process.cpuUsage();
/** CPU and UDP datagrams received when the session became ready. */
let cpuAtReady: NodeJS.CpuUsage | undefined;
let udpAtReady: number | undefined;

/**
 * A UDP counter of this namespace, IPv4 plus IPv6 (/proc/self/net/snmp `Udp: <v4>`, snmp6
 * `Udp6<v4>`): every process of the lab has a namespace of its own, and its only UDP traffic is
 * mDNS. `InDatagrams`: received; `RcvbufErrors`: dropped because a socket's buffer was full.
 */
function udpCounter(v4name: 'InDatagrams' | 'RcvbufErrors'): number | null {
  try {
    let n = 0;
    const v4 = readFileSync('/proc/self/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    if (v4.length >= 2) {
      const names = (v4[0] as string).split(/\s+/);
      const vals = (v4[1] as string).split(/\s+/);
      n += Number(vals[names.indexOf(v4name)] ?? 0);
    }
    const m6 = new RegExp(`^Udp6${v4name}\\s+(\\d+)`, 'm').exec(readFileSync('/proc/self/net/snmp6', 'utf8'));
    if (m6) n += Number(m6[1]);
    return n;
  } catch {
    return null;
  }
}
const udpReceived = (): number | null => udpCounter('InDatagrams');
const udpDropped = (): number | null => udpCounter('RcvbufErrors');

const FANOUT_MAGIC = 0x46414e4f; // 'FANO'

/** Open file descriptors of this process. */
function fdCount(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/** Byte and packet counters of this namespace's eth0 (rx, tx) from /proc/self/net/dev. */
function ethCounters(): { rxBytes: number; rxPackets: number; txBytes: number; txPackets: number } | undefined {
  try {
    for (const line of readFileSync('/proc/self/net/dev', 'utf8').split('\n')) {
      const m = /^\s*eth0:\s*(.*)$/.exec(line);
      if (!m) continue;
      const f = (m[1] as string).trim().split(/\s+/).map(Number);
      return { rxBytes: f[0] ?? 0, rxPackets: f[1] ?? 0, txBytes: f[8] ?? 0, txPackets: f[9] ?? 0 };
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** Live Timeout / Immediate objects, unref'd ones included (getActiveResourcesInfo lists only ref'd ones). */
const liveTimers = new Set<number>();
if (cfg.countTimers) {
  createHook({
    init(id, type) {
      if (type === 'Timeout' || type === 'Immediate') liveTimers.add(id);
    },
    destroy(id) {
      liveTimers.delete(id);
    },
  }).enable();
}

/** Handles and requests keeping the loop alive, by kind (Timeout, TCPSocketWrap, UDPWrap, …). */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/**
 * With `sessions` > 1 the process holds that many sessions sharing one dnssd engine (the
 * `mdns` option: one set of port-5353 sockets, one host name), and every line names its
 * session: `s` (0-based). Engine-wide lines (conflict, registration) and diagnostics that do
 * not say their session (dial, rejected, budget) carry no `s`.
 */
const mdns = Mdns ? new Mdns(cfg.interfaces ? { interfaces: cfg.interfaces } : {}) : undefined;
const sessions: Array<InstanceType<typeof PeerSession>> = [];
/** Which slot a diagnostics message's `session` (the session's peer id) is. */
const slotOf = new Map<unknown, number>();
const emit = (slot: number | undefined, o: Record<string, unknown>): void => out(multi && slot !== undefined ? { ...o, s: slot } : o);

for (let slot = 0; slot < count; slot++) {
  const session = new PeerSession({
    serviceType: cfg.service,
    security: { mode: 'psk', key: cfg.psk },
    ...(cfg.name ? { displayName: multi ? `${cfg.name}-${slot}` : cfg.name } : {}),
    ...(cfg.interfaces ? { interfaces: cfg.interfaces } : {}),
    ...(cfg.includePeerIdInTxt ? { includePeerIdInTxt: true } : {}),
    ...(cfg.budgets ? { budgets: cfg.budgets } : {}),
    ...(mdns ? { mdns } : {}),
    ...(cfg.timing ?? {}),
  });
  sessions.push(session);
  slotOf.set(session.peerId.id, slot);
  session.on('peerError', (err, info) => emit(slot, { ev: 'peerError', code: err.code, message: err.message, endpoint: info.endpoint ?? null }));
  session.on('peer', (p: PeerID, state) => emit(slot, { ev: 'peer', peer: p.id, state }));
  // discovery, for diagnosing pairs that never met (instance names: the host's display name)
  session.on('found', (d) => emit(slot, { ev: 'found', instance: d.instanceName }));
  session.on('lost', (d) => emit(slot, { ev: 'lost', instance: d.instanceName }));
  session.on('advertised', (name: string) => emit(slot, { ev: 'advertised', instance: name }));
  session.on('message', (data: Buffer, p: PeerID) => {
    if (data.length >= 12 && data.readUInt32BE(0) === FANOUT_MAGIC) {
      emit(slot, { ev: 'fanout-recv', from: p.id, sentAt: Number(data.readBigUInt64BE(4)), tag: data.subarray(12).toString() });
    }
  });
}

// name conflicts and registration steps of the dnssd engine (a handful per run)
subscribe('peerlink:dnssd:conflict', (m) => out({ ev: 'conflict', ...(m as Record<string, unknown>) }));
subscribe('peerlink:dnssd:registration', (m) => out({ ev: 'registration', ...(m as Record<string, unknown>) }));
// budget refusals (dial back-off, dial rate …) with the address concerned (`session` is an
// internal object: with several sessions these lines carry no `s`)
subscribe('peerlink:session:budget', (m) => {
  const { session: _s, ...rest } = m as Record<string, unknown>;
  out({ ev: 'budget', ...rest });
});
// the de-duplication trail: why a control connection was kept, dropped or closed
subscribe('peerlink:session:connection', (m) => {
  const { session: s, ...rest } = m as Record<string, unknown>;
  emit(slotOf.get(s), { ev: 'conn', ...rest });
});
// outgoing connections that failed (dial timeouts, refusals), for diagnosing pairs that never met
subscribe('peerlink:net:connection:state', (m) => {
  const c = m as { role?: string; endpoint?: string; state?: string; error?: { code: string; message?: string } };
  // a timeout says where the handshake stood (connection-attempts.ts): the parenthesis at its end
  const stood = c.error?.code === 'ERR_CONNECTION_TIMEOUT' ? /\(([^)]*)\)$/.exec(c.error.message ?? '')?.[1] : undefined;
  if (c.role !== 'server' && c.state !== 'setup' && c.state !== 'preparing') out({ ev: 'dial', endpoint: c.endpoint ?? '', state: c.state ?? '', code: c.error?.code ?? '', ...(stood ? { stood } : {}) });
});
subscribe('peerlink:net:listener:rejected', (m) => {
  const r = m as { remote?: string; error?: { code: string } };
  out({ ev: 'rejected', remote: r.remote ?? '', code: r.error?.code ?? '' });
});
/** Event-loop delay (a starved process's timers fire late): reported with the metrics, then reset. */
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();

/** Closes every session, then the shared engine. */
async function closeAll(): Promise<void> {
  await Promise.all(sessions.map((s) => s.close()));
  await mdns?.close().catch(() => undefined);
}

async function onCommand(c: ScaleCommand): Promise<void> {
  const slot = c.s ?? 0;
  const session = sessions[slot];
  if (!session) throw new Error(`no session ${slot} (this process has ${count})`);
  switch (c.cmd) {
    case 'status': {
      const ids = session.connectedPeers.map((p) => p.id);
      emit(slot, { ev: 'status', id: session.peerId.id, connected: ids, unique: new Set(ids).size, stats: session.stats });
      return;
    }
    case 'metrics': {
      // after two full GCs (as bench/scale/memory.js measures a lone session) when asked and
      // the peer runs with --expose-gc; otherwise what `top` shows
      const collect = (globalThis as { gc?: () => void }).gc;
      const gcDone = c.gc === true && collect !== undefined;
      if (gcDone) {
        collect();
        collect();
      }
      const m = process.memoryUsage();
      // and what glibc could still give back after those GCs (malloc_trim): the session trims
      // once a burst of connections has been quiet for 10 s, which may be before V8 collected
      // the burst's garbage
      let rssTrimmed: number | null = null;
      if (gcDone) {
        const { releaseFreeMemory } = await import('../../src/net/sockopt.js');
        if (releaseFreeMemory()) rssTrimmed = process.memoryUsage().rss;
      }
      const cpu = process.cpuUsage();
      // process-wide figures (memory, CPU, fds, eth0) are the whole process's: with `sessions` > 1, every slot reports the same
      emit(slot, { ev: 'metrics', sessions: count, afterGc: gcDone, rssTrimmed, cpuAtLoad, cpuAtReady: cpuAtReady ?? null, udpAtReady: udpAtReady ?? null, udpReceived: udpReceived(), udpDropped: udpDropped(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, cpuUser: cpu.user, cpuSystem: cpu.system, uptime: process.uptime(), fds: fdCount(), resources: resources(), timers: cfg.countTimers ? liveTimers.size : null, eth0: ethCounters() ?? null, loopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }, connected: session.connectedPeers.length, stats: session.stats });
      return;
    }
    case 'fanout': {
      const tag = Buffer.from(c.tag);
      const b = Buffer.alloc(Math.max(12 + tag.length, c.size ?? 64));
      b.writeUInt32BE(FANOUT_MAGIC, 0);
      const peers = session.connectedPeers;
      const t0 = Date.now();
      b.writeBigUInt64BE(BigInt(t0), 4);
      tag.copy(b, 12);
      await session.send(b.subarray(0, 12 + tag.length), { to: peers });
      emit(slot, { ev: 'fanout-sent', tag: c.tag, to: peers.length, sentAt: t0 });
      return;
    }
    case 'close':
      await closeAll();
      out({ ev: 'closed' });
      process.exit(0);
  }
}

readCommands<ScaleCommand>(onCommand);
// Graceful leave: BYE to every peer and mDNS goodbyes, then exit.
process.on('SIGTERM', () => {
  void closeAll().finally(() => {
    out({ ev: 'closed' });
    process.exit(0);
  });
});
Promise.all(sessions.map((s) => s.start()))
  .then(() => {
    cpuAtReady = process.cpuUsage();
    udpAtReady = udpReceived() ?? undefined;
    sessions.forEach((session, slot) => emit(slot, { ev: 'ready', id: session.peerId.id, port: session.listenPort }));
  })
  .catch((err: unknown) => {
    out({ ev: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  });
