/**
 * What happened in an N-peer start, from the peers' own event lines: a tally of every event
 * (dials by outcome, budget refusals, found/lost, conflicts …), when the host- and service-name
 * conflicts fell (and each one after 40 s), browse results lost per 10 s, and the datagrams the
 * kernel dropped at full socket buffers (UDP RcvbufErrors of every host's namespace). The mesh
 * run (run.js) says how well it went; this says why.
 *
 *   node dist/bench/scale/events.js [--n 100] [--wait 150] [--budgets '{"dialsInFlight":3}'] [--per-host K]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { ScaleLab, type Json } from '../../test/harness/scale-lab.js';

const HELP = `node dist/bench/scale/events.js [--n 100] [--wait 150] [--budgets JSON] [--per-host K]   (root: network namespaces; K sessions per process, run.js --per-host)`;

const { values } = parseArgs({ options: { n: { type: 'string', default: '100' }, wait: { type: 'string', default: '150' }, budgets: { type: 'string' }, 'per-host': { type: 'string', default: '1' }, help: { type: 'boolean' } } });
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const n = Number(values.n);
const perHost = Number(values['per-host']);
if (!Number.isInteger(perHost) || perHost < 1 || n % perHost !== 0) {
  console.error(`--n ${n} must be a multiple of --per-host ${values['per-host']} (a whole number ≥ 1)`);
  process.exit(2);
}
const lab = await ScaleLab.create({ hosts: Math.ceil(n / perHost), tag: 'ev', ...(perHost > 1 ? { sessionsPerHost: perHost } : {}), ...(values.budgets ? { budgets: JSON.parse(values.budgets) as Record<string, number> } : {}) });
const drops = async (): Promise<string> => {
  const m = await lab.metrics();
  let dropped = 0;
  let received = 0;
  // UDP counters are the namespace's: count each process once
  for (const [p, x] of m) {
    if (p.slot !== 0) continue;
    dropped += x.udpDropped ?? 0;
    received += x.udpReceived ?? 0;
  }
  return `UDP datagrams received ${received}, dropped at full socket buffers ${dropped} (all hosts)`;
};
try {
  const t0 = Date.now();
  console.log(`N=${n}, load ${loadavg()[0]?.toFixed(1)}`);
  const peers = await lab.startAll();
  const lastReady = Math.max(...peers.map((p) => p.readyAt));
  console.log(`start-up ${lastReady - t0} ms; ${await drops()}`);
  const mesh = await lab.waitMesh(Number(values.wait) * 1000, 3000);
  console.log(`mesh ${mesh.ok ? 'complete' : 'NOT complete'} ${mesh.at - lastReady} ms after the last ready: missing ${mesh.check.missing}, duplicates ${mesh.check.duplicates}; ${await drops()}; load ${loadavg()[0]?.toFixed(1)}`);
  const tally = new Map<string, number>();
  const add = (k: string): void => void tally.set(k, (tally.get(k) ?? 0) + 1);
  const conflicts: Array<{ s: number; line: string }> = [];
  const lost = new Map<number, number>();
  /** Dial outcomes per 30 s after the start: where the tail of a slow mesh goes. */
  const dials = new Map<number, Map<string, number>>();
  const each = (fn: (host: number, e: Json) => void): void => {
    for (const p of peers) for (const e of p.events()) fn(p.host, e);
  };
  /** When each session first found, and first connected to, each other session: per 5 s after the last ready. */
  const firsts = (ev: string, key: string, state?: string): string => {
    const bins = new Map<number, number>();
    for (const p of peers) {
      const seen = new Set<unknown>();
      for (const e of p.events()) {
        if (e.ev !== ev || (state !== undefined && e['state'] !== state) || seen.has(e[key])) continue;
        seen.add(e[key]);
        const b = Math.floor((e.t - lastReady) / 5000) * 5;
        bins.set(b, (bins.get(b) ?? 0) + 1);
      }
    }
    return [...bins].sort((a, b) => a[0] - b[0]).map(([b, v]) => `${b}s:${v}`).join(' ');
  };
  console.log(`first found, per 5 s after the last ready (session × instance): ${firsts('found', 'instance')}`);
  console.log(`first connected, per 5 s after the last ready (session × peer): ${firsts('peer', 'peer', 'connected')}`);
  each((host, e) => {
    const s = (e.t - t0) / 1000;
    if (e.ev === 'dial') {
      const stood = typeof e['stood'] === 'string' ? ` (${e['stood']})` : '';
      const outcome = e['state'] === 'ready' ? 'ready' : `${String(e['code'] ?? e['state'])}${stood}`;
      add(`dial ${outcome === 'ready' ? 'ready' : `${String(e['state'])} ${outcome}`}`);
      const b = Math.floor(s / 30) * 30;
      const m = dials.get(b) ?? new Map<string, number>();
      m.set(outcome, (m.get(outcome) ?? 0) + 1);
      dials.set(b, m);
    }
    else if (e.ev === 'rejected') add(`rejected ${String(e['code'])}`);
    else if (e.ev === 'budget') add(`budget ${String(e['budget'])}`);
    else if (e.ev === 'conn') add(`conn ${String(e['decision'])}`);
    else if (e.ev === 'conflict') {
      add(`conflict ${String(e['kind'])}`);
      conflicts.push({ s, line: `${s.toFixed(1)} s h${host} ${String(e['kind'])} ${String(e['from'])} -> ${String(e['name'])}` });
    } else if (e.ev) add(e.ev);
    if (e.ev === 'lost') lost.set(Math.floor(s / 10) * 10, (lost.get(Math.floor(s / 10) * 10) ?? 0) + 1);
  });
  conflicts.sort((a, b) => a.s - b.s);
  const at = (q: number): string => (conflicts.length ? (conflicts[Math.min(conflicts.length - 1, Math.floor(q * conflicts.length))]?.s ?? 0).toFixed(1) : '–');
  console.log(`conflicts ${conflicts.length}: p10 ${at(0.1)} s, p50 ${at(0.5)} s, p90 ${at(0.9)} s, last ${at(1)} s after the start`);
  const late = conflicts.filter((c) => c.s > 40);
  console.log(`after 40 s: ${late.length}`);
  for (const c of late.slice(0, 40)) console.log(`  ${c.line}`);
  console.log('dial outcomes per 30 s after the start:');
  for (const [b, m] of [...dials].sort((x, y) => x[0] - y[0])) console.log(`  ${String(b).padStart(4)}–${b + 30} s: ${[...m].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`browse results lost, per 10 s after the start: ${JSON.stringify(Object.fromEntries([...lost].sort((a, b) => a[0] - b[0])))}`);
  for (const [k, v] of [...tally].sort((a, b) => b[1] - a[1])) console.log(`${String(v).padStart(8)} ${k}`);
} finally {
  await lab.teardown();
}
