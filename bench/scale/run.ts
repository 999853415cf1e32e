/**
 * Scale lab benchmark: N hosts (network namespaces on one bridge, one PeerSession process
 * each — or N/K processes of K sessions with --per-host K — PSK, star), started together.
 * See README.md.
 *
 *   node dist/bench/scale/run.js mesh  --n 32 [--runs 1] [--idle 60] [--out file.json]
 *   node dist/bench/scale/run.js churn --n 16 --minutes 10 [--out file.json] [--plot file.png]
 *
 * Needs root (namespaces). Prints a table; --out writes every number as JSON.
 */
import { entryKind, importLibrary } from './entry.js';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { ScaleLab, summary, type PeerMetrics, type ScalePeer } from '../../test/harness/scale-lab.js';
import { sleep } from '../../test/harness/proc.js';
import { plotPng } from './plot.js';

interface Args {
  mode: 'mesh' | 'churn';
  n: number;
  runs: number;
  idle: number;
  minutes: number;
  out?: string;
  plot?: string;
  txtId: boolean;
  /** Profile this many peers (spread over the hosts) with --cpu-prof into profDir. */
  prof: number;
  profDir: string;
  /** cpu: --cpu-prof; heap: --heap-prof (sampled allocations with their stacks). */
  profKind: 'cpu' | 'heap';
  budgets?: Record<string, number>;
  timing?: Record<string, number>;
  /** Sessions per host process, sharing one dnssd engine (N / perHost namespaces). */
  perHost: number;
}

const HELP = `Scale lab (needs root: network namespaces). See bench/scale/README.md.

  node dist/bench/scale/run.js mesh  [--n 16] [--runs 1] [--idle 60] [--txt-id] [--out file.json]
                                     [--prof K --prof-dir DIR]   (--cpu-prof on K peers, closed after the idle window)
                                     [--prof-kind heap]          (--heap-prof instead: allocations by stack)
                                     [--budgets JSON]            (session budgets of every peer, e.g. '{"dialsInFlight":3}')
                                     [--timing JSON]             (session timing options, e.g. '{"keepaliveInterval":10000}')
                                     [--per-host K]              (K sessions per process sharing one mDNS engine, in N/K namespaces)
  node dist/bench/scale/run.js churn [--n 16] [--minutes 10] [--plot file.png] [--out file.json]

mesh: N peers started together; time to full mesh after the last ready, missing/duplicate/stale
connections, flaps, fan-out, mDNS on the bridge (start-up and steady), and per peer at idle over
--idle seconds: eth0 tx, control traffic (eth0 tx minus the peer's share of mDNS), CPU, RSS, heap,
fds, timers (with --per-host K: RSS, heap, CPU and eth0 per peer are the process's ÷ K; fds and
timers are per process). churn: one peer leaves and one joins every second for --minutes.`;

function parseArgs(): Args {
  const a = process.argv.slice(2);
  if (a.includes('--help') || a.includes('-h')) {
    console.log(HELP);
    process.exit(0);
  }
  const mode = a[0] === 'churn' ? 'churn' : 'mesh';
  const get = (k: string): string | undefined => {
    const i = a.indexOf(`--${k}`);
    return i >= 0 ? a[i + 1] : undefined;
  };
  return {
    mode,
    n: Number(get('n') ?? 16),
    runs: Number(get('runs') ?? 1),
    idle: Number(get('idle') ?? 60),
    minutes: Number(get('minutes') ?? 10),
    ...(get('out') ? { out: get('out') as string } : {}),
    ...(get('plot') ? { plot: get('plot') as string } : {}),
    txtId: a.includes('--txt-id'),
    prof: Number(get('prof') ?? 0),
    profDir: get('prof-dir') ?? 'scale-prof',
    profKind: get('prof-kind') === 'heap' ? 'heap' : 'cpu',
    ...(get('budgets') ? { budgets: JSON.parse(get('budgets') as string) as Record<string, number> } : {}),
    ...(get('timing') ? { timing: JSON.parse(get('timing') as string) as Record<string, number> } : {}),
    perHost: Number(get('per-host') ?? 1),
  };
}

/**
 * With several sessions per process: one entry per process (slot 0's peer), its memory, CPU
 * and eth0 figures divided by the sessions it holds (a peer's share). fds and timers stay the
 * process's.
 */
function perPeerShare(m: Map<ScalePeer, PeerMetrics>): Map<ScalePeer, PeerMetrics> {
  const out = new Map<ScalePeer, PeerMetrics>();
  for (const [p, x] of m) {
    if (p.slot !== 0) continue;
    const k = p.sessions;
    const cpu = (c: { user: number; system: number } | null | undefined): { user: number; system: number } | null | undefined => (c ? { user: c.user / k, system: c.system / k } : c);
    out.set(p, {
      ...x,
      rss: x.rss / k,
      heapUsed: x.heapUsed / k,
      cpuUser: x.cpuUser / k,
      cpuSystem: x.cpuSystem / k,
      ...(typeof x.rssTrimmed === 'number' ? { rssTrimmed: x.rssTrimmed / k } : {}),
      ...(x.cpuAtLoad ? { cpuAtLoad: cpu(x.cpuAtLoad) as { user: number; system: number } } : {}),
      ...(x.cpuAtReady !== undefined ? { cpuAtReady: cpu(x.cpuAtReady) ?? null } : {}),
      eth0: x.eth0 ? { rxBytes: x.eth0.rxBytes / k, rxPackets: x.eth0.rxPackets / k, txBytes: x.eth0.txBytes / k, txPackets: x.eth0.txPackets / k } : null,
    });
  }
  return out;
}

const MiB = 1024 * 1024;
const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '–');

async function meshRun(args: Args, run: number): Promise<Record<string, unknown>> {
  // profiled hosts: spread evenly (the first started and the last started differ the most)
  const profiled = new Set<number>();
  const hosts = Math.ceil(args.n / args.perHost);
  if (!Number.isInteger(args.perHost) || args.perHost < 1 || hosts * args.perHost !== args.n) throw new Error(`--n ${args.n} must be a multiple of --per-host ${args.perHost} (a whole number ≥ 1)`);
  for (let i = 0; i < args.prof; i++) profiled.add(1 + Math.round((i * (hosts - 1)) / Math.max(1, args.prof - 1)));
  const lab = await ScaleLab.create({
    hosts,
    ...(args.perHost > 1 ? { sessionsPerHost: args.perHost } : {}),
    tag: `sc${run}`,
    includePeerIdInTxt: args.txtId,
    countTimers: true,
    nodeArgs: ['--expose-gc'],
    // what an app loads (and what memory.js / lone.js measure a lone session with)
    entry: entryKind,
    ...(args.budgets ? { budgets: args.budgets } : {}),
    ...(args.timing ? { timing: args.timing } : {}),
    hostNodeArgs: (h) => (profiled.has(h) ? [`--${args.profKind}-prof`, `--${args.profKind}-prof-dir=${args.profDir}`, `--${args.profKind}-prof-name=h${h}-run${run}.${args.profKind}profile`] : []),
  });
  const loadStart = loadavg()[0] as number;
  try {
    const s0 = lab.mdnsNow();
    const t0 = Date.now();
    const peers = await lab.startAll();
    const lastReady = Math.max(...peers.map((p) => p.readyAt));
    const firstReady = Math.min(...peers.map((p) => p.readyAt));
    const mesh = await lab.waitMesh(180_000, 500);
    const meshMs = mesh.at - lastReady;
    const sMesh = lab.mdnsNow();
    // flaps: a pair that connected more than once while the mesh formed
    let flaps = 0;
    for (const p of peers) for (const n of p.connectCounts().values()) if (n > 1) flaps += n - 1;
    // control connections that ended on a keepalive timeout (either side's verdict, counted where it was made)
    const keepaliveTimeouts = (): number => {
      let k = 0;
      for (const p of peers) for (const e of p.events()) if (e.ev === 'conn' && String(e.reason).includes('keepalive timeout')) k++;
      return k;
    };
    const kaMesh = keepaliveTimeouts();
    const fan = mesh.ok ? await lab.fanout(peers[0] as ScalePeer) : { to: 0, delays: [], last: Number.NaN };
    // idle: steady state, keepalives and mDNS only
    const m1 = perPeerShare(await lab.metrics());
    const sIdle = lab.mdnsNow();
    await sleep(args.idle * 1000);
    const m2 = perPeerShare(await lab.metrics());
    const sIdleEnd = lab.mdnsNow();
    // memory after two full GCs, as memory.js / lone.js measure a lone session (after the idle
    // window's CPU figures: the collections cost CPU)
    const m3 = perPeerShare(await lab.metrics(undefined, 60_000, true));
    const rssGc = [...m3.values()].filter((m) => m.afterGc).map((m) => m.rss / MiB);
    const rssTrim = [...m3.values()].filter((m) => typeof m.rssTrimmed === 'number').map((m) => (m.rssTrimmed as number) / MiB);
    const endStatus = await lab.statuses();
    const end = ScaleLab.check(endStatus, lab.live().map((p) => p.id));
    // budget refusals summed over every peer (honest peers should cause none, or only dial-rate waits)
    const budgets: Record<string, number> = {};
    for (const s of endStatus.values()) for (const [k, v] of Object.entries(s.stats.budgets)) budgets[k] = (budgets[k] ?? 0) + v;
    const startup = lab.mdnsRate(s0, sMesh + 1);
    const steady = lab.mdnsRate(sIdle, sIdleEnd);
    const rss = [...m2.values()].map((m) => m.rss / MiB);
    const heap = [...m2.values()].map((m) => m.heapUsed / MiB);
    // where each peer's CPU went: loading modules, start() until ready, ready until the mesh (m1)
    const cpuOf = (c: { user: number; system: number } | null | undefined): number => (c ? (c.user + c.system) / 1e6 : Number.NaN);
    const cpuLoad = summary([...m1.values()].map((m) => cpuOf(m.cpuAtLoad)));
    const cpuReady = summary([...m1.values()].map((m) => cpuOf(m.cpuAtReady) - cpuOf(m.cpuAtLoad)));
    const cpuMesh = summary([...m1.values()].map((m) => (m.cpuUser + m.cpuSystem) / 1e6 - cpuOf(m.cpuAtReady)));
    const udpStartup = summary([...m1.values()].map((m) => (m.udpReceived ?? Number.NaN) - (m.udpAtReady ?? Number.NaN)));
    const udpBeforeReady = summary([...m1.values()].map((m) => m.udpAtReady ?? Number.NaN));
    const udpDropped = summary([...m1.values()].map((m) => m.udpDropped ?? Number.NaN));
    // second control connections for a pair that was already connected (both sides dialled)
    let duplicateDials = 0;
    for (const p of peers) for (const e of p.events()) if (e.ev === 'conn' && String(e.reason).includes('already connected')) duplicateDials++;
    const cpuIdle = [...m2.entries()].map(([p, m]) => {
      const a = m1.get(p);
      return a ? ((m.cpuUser + m.cpuSystem - a.cpuUser - a.cpuSystem) / 1000 / (args.idle * 1000)) * 100 : Number.NaN;
    });
    const cpuTotal = [...m2.values()].map((m) => (m.cpuUser + m.cpuSystem) / 1e6);
    // eth0 traffic per peer at idle, minus nothing: mDNS at steady state is a small share (reported apart)
    const txIdle = [...m2.entries()].map(([p, m]) => {
      const a = m1.get(p);
      return a && a.eth0 && m.eth0 ? ((m.eth0.txBytes - a.eth0.txBytes) * 60) / args.idle : Number.NaN;
    });
    const txPktIdle = [...m2.entries()].map(([p, m]) => {
      const a = m1.get(p);
      return a && a.eth0 && m.eth0 ? ((m.eth0.txPackets - a.eth0.txPackets) * 60) / args.idle : Number.NaN;
    });
    const fds = [...m2.values()].map((m) => m.fds);
    const timers = [...m2.values()].map((m) => m.timers ?? 0);
    // control connections (keepalives): eth0 tx minus this peer's share of the link's mDNS
    const mdnsShare = steady.bytesPerMin / args.n;
    const mdnsPktShare = steady.packetsPerMin / args.n;
    const controlBytes = summary(txIdle.map((x) => x - mdnsShare));
    const controlPkts = summary(txPktIdle.map((x) => x - mdnsPktShare));
    const load = [loadStart, loadavg()[0] as number];
    // event-loop delay of each peer from its start to the mesh (a starved process)
    const lagMax = summary([...m1.values()].map((m) => m.loopDelayMs?.max ?? Number.NaN));
    const lagP99 = summary([...m1.values()].map((m) => m.loopDelayMs?.p99 ?? Number.NaN));
    const r = {
      run,
      n: args.n,
      sessionsPerProcess: args.perHost,
      startMs: lastReady - t0,
      readySpreadMs: lastReady - firstReady,
      meshOk: mesh.ok,
      meshMsAfterLastReady: meshMs,
      missing: end.missing,
      duplicates: end.duplicates,
      handshaking: end.handshaking,
      stale: end.stale,
      flaps,
      keepaliveTimeouts: { untilMesh: kaMesh, total: keepaliveTimeouts() },
      problems: [...mesh.check.problems, ...end.problems],
      budgets,
      fanout: { to: fan.to, last: fan.last, median: summary(fan.delays).median, lost: fan.delays.filter((d) => !Number.isFinite(d)).length },
      mdnsStartup: { ...startup, perPeerPacketsPerMin: startup.packetsPerMin / args.n },
      mdnsSteady: { ...steady, perPeerPacketsPerMin: steady.packetsPerMin / args.n },
      rssMiB: summary(rss),
      rssAfterGcMiB: summary(rssGc),
      rssAfterGcTrimMiB: summary(rssTrim),
      heapMiB: summary(heap),
      cpuIdlePercent: summary(cpuIdle),
      cpuSecondsTotal: summary(cpuTotal),
      eth0TxBytesPerMinIdle: summary(txIdle),
      eth0TxPacketsPerMinIdle: summary(txPktIdle),
      controlTxBytesPerMinIdle: controlBytes,
      controlTxPacketsPerMinIdle: controlPkts,
      loadAverage: load,
      loopDelayUntilMeshMs: { max: lagMax, p99: lagP99 },
      cpuSeconds: { load: cpuLoad, startToReady: cpuReady, readyToMesh: cpuMesh },
      udpReceived: { beforeReady: udpBeforeReady, readyToMesh: udpStartup },
      udpDroppedUntilMesh: udpDropped,
      duplicateDials,
      fds: summary(fds),
      timers: summary(timers),
    };
    if (args.perHost > 1) console.log(`run ${run}: ${hosts} processes × ${args.perHost} sessions sharing one mDNS engine each; RSS, heap, CPU and eth0 "per peer" below are a process's ÷ ${args.perHost}, fds and timers per process`);
    console.log(
      `run ${run} N=${args.n}: mesh ${mesh.ok ? 'ok' : 'NOT complete'} ${meshMs} ms after last ready (start-up ${lastReady - t0} ms, ready spread ${lastReady - firstReady} ms); ` +
        `missing ${end.missing}, duplicates ${end.duplicates} (+${end.handshaking} handshakes in progress), stale ${end.stale}, flaps ${flaps}, keepalive timeouts ${kaMesh} (+${keepaliveTimeouts() - kaMesh} at idle); ` +
        `fan-out to ${fan.to}: last ${fmt(fan.last, 0)} ms, median ${fmt(summary(fan.delays).median, 0)} ms\n` +
        `  mDNS start-up ${fmt(startup.packetsPerMin, 0)} pkt/min (${fmt(startup.packetsPerMin / args.n)} per peer), ${fmt(startup.bytesPerMin / 1024, 0)} KiB/min over ${startup.seconds} s; ` +
        `steady ${fmt(steady.packetsPerMin, 1)} pkt/min (${fmt(steady.packetsPerMin / args.n, 2)} per peer), ${fmt(steady.bytesPerMin / 1024, 1)} KiB/min over ${steady.seconds} s\n` +
        `  per peer at idle: eth0 tx ${fmt(summary(txIdle).median / 1024)} KiB/min, ${fmt(summary(txPktIdle).median, 0)} pkt/min; CPU ${fmt(summary(cpuIdle).median, 2)} % (max ${fmt(summary(cpuIdle).max, 2)}); ` +
        `RSS median ${fmt(summary(rss).median)} MiB (max ${fmt(summary(rss).max)}), after two full GCs ${fmt(summary(rssGc).median)} MiB (max ${fmt(summary(rssGc).max)}), and a malloc_trim ${fmt(summary(rssTrim).median)} MiB; heap ${fmt(summary(heap).median)} MiB; fds ${summary(fds).median}; timers ${summary(timers).median}\n` +
        `  control connections at idle, per peer: ${fmt(controlBytes.median / 1024)} KiB/min, ${fmt(controlPkts.median, 0)} pkt/min sent (${fmt(controlBytes.median / Math.max(1, args.n - 1), 0)} B/min, ${fmt(controlPkts.median / Math.max(1, args.n - 1), 1)} pkt/min per connection); load average ${fmt(load[0] as number)} → ${fmt(load[1] as number)}\n` +
        `  event-loop delay until the mesh, per peer: max ${fmt(lagMax.median, 0)} ms median (worst ${fmt(lagMax.max, 0)}), p99 ${fmt(lagP99.median, 0)} ms median`,
    );
    console.log(
      `  CPU per peer (median s): loading ${fmt(cpuLoad.median, 2)}, start→ready ${fmt(cpuReady.median, 2)}, ready→mesh ${fmt(cpuMesh.median, 2)} (max ${fmt(cpuMesh.max, 2)}); ` +
        `mDNS datagrams received per peer: before ready ${fmt(udpBeforeReady.median, 0)}, ready→mesh ${fmt(udpStartup.median, 0)}, dropped by a full socket buffer until the mesh ${fmt(udpDropped.median, 0)}; duplicate dials dropped ${duplicateDials}`,
    );
    console.log(`  budget refusals (all peers): ${JSON.stringify(budgets)}; heap trims by the sessions (stats.memoryTrims): ${[...endStatus.values()].reduce((n, s) => n + ((s.stats as { memoryTrims?: number }).memoryTrims ?? 0), 0)}`);
    if (r.problems.length > 0) console.log(`  problems: ${r.problems.join('; ')}`);
    // profiled peers write their profile on a clean exit
    await Promise.all(peers.filter((p) => profiled.has(p.host) && p.slot === 0).map((p) => p.request({ cmd: 'close' }, 'closed', 30_000).then(() => p.proc.exited).catch(() => undefined)));
    return r;
  } finally {
    await lab.teardown();
  }
}

interface Sample {
  t: number;
  rss: number;
  heap: number;
  fds: number;
  timers: number;
  live: number;
}

async function churn(args: Args): Promise<Record<string, unknown>> {
  const lab = await ScaleLab.create({ hosts: args.n, tag: 'churn', countTimers: true });
  try {
    const peers = await lab.startAll();
    const observer = peers[0] as ScalePeer;
    const first = await lab.waitMesh(180_000, 500);
    console.log(`churn N=${args.n}: initial mesh ${first.ok ? 'ok' : 'NOT complete'}`);
    const samples: Sample[] = [];
    const t0 = Date.now();
    let lastSample = -Infinity;
    const counts = await lab.churn(args.minutes * 60, [observer], async (elapsed) => {
      if (elapsed - lastSample < 10_000) return;
      lastSample = elapsed;
      const m = (await lab.metrics([observer])).get(observer);
      if (!m) return;
      const s: Sample = { t: (Date.now() - t0) / 1000, rss: m.rss / MiB, heap: m.heapUsed / MiB, fds: m.fds, timers: m.timers ?? 0, live: lab.live().length };
      samples.push(s);
      console.log(`  t=${fmt(s.t, 0)} s live ${s.live}: observer RSS ${fmt(s.rss)} MiB heap ${fmt(s.heap)} MiB fds ${s.fds} timers ${s.timers} connected ${m.connected}`);
    });
    const { kills, graceful, joins } = counts;
    // settle: everyone ends with the live set
    const churnEnd = Date.now();
    const settled = await lab.waitMesh(120_000, 1000);
    let stuck = 0;
    for (const p of lab.live()) stuck += p.stuckConnecting().filter((s) => s.ms > 30_000).length;
    const from2 = samples.filter((s) => s.t >= 120);
    const drift = (k: keyof Sample): number => {
      const a = from2[0];
      const b = from2[from2.length - 1];
      return a && b ? ((b[k] as number) - (a[k] as number)) / (a[k] as number) : Number.NaN;
    };
    const r = { n: args.n, minutes: args.minutes, kills, graceful, joins, settledOk: settled.ok, settledMs: settled.at - churnEnd, check: settled.check, stuckConnecting: stuck, samples, drift: { rss: drift('rss'), heap: drift('heap'), fds: drift('fds'), timers: drift('timers') } };
    console.log(`churn: ${kills} killed, ${graceful} graceful, ${joins} joined; live set converged: ${settled.ok ? `yes, ${r.settledMs} ms after the last join` : 'NO'} (missing ${settled.check.missing}, duplicates ${settled.check.duplicates}, stale ${settled.check.stale}); stuck connecting ${stuck}`);
    console.log(`  observer from minute 2 to the end: RSS ${fmt(r.drift.rss * 100)} %, heap ${fmt(r.drift.heap * 100)} %, fds ${fmt(r.drift.fds * 100)} %, timers ${fmt(r.drift.timers * 100)} %`);
    if (!settled.ok) console.log(`  problems: ${settled.check.problems.join('; ')}`);
    if (args.plot) {
      writeFileSync(args.plot, plotPng(samples.map((s) => ({ x: s.t, series: { 'RSS MiB': s.rss, 'heap MiB': s.heap, fds: s.fds, timers: s.timers } }))));
      console.log(`  plot: ${args.plot}`);
    }
    return r;
  } finally {
    await lab.teardown();
  }
}

async function main(): Promise<void> {
  const args = parseArgs();
  // refuses a bundle older than the last tsc build (the peers import it)
  if (entryKind === 'bundle') await importLibrary();
  const results: Array<Record<string, unknown>> = [];
  if (args.mode === 'mesh') for (let i = 1; i <= args.runs; i++) results.push(await meshRun(args, i));
  else results.push(await churn(args));
  if (args.out) writeFileSync(args.out, JSON.stringify(results, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
