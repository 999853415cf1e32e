/**
 * Summarises V8 CPU profiles (`--cpu-prof`, e.g. from `run.js mesh --prof K`) by self time:
 * per category (module loading, mDNS, TLS, session, …), per file and per function, summed over
 * the profiles given. Times are samples × the sampling interval (CPU, not wall time).
 *
 *   node dist/bench/scale/prof-summary.js DIR_OR_FILES… [--top 30]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a sample's self time belongs: the nearest layer on its stack (leaf first). */
function category(f: CallFrame, stack: readonly CallFrame[]): string {
  if (f.functionName === '(idle)') return 'idle';
  if (f.functionName === '(garbage collector)') return 'gc';
  if (f.functionName === '(program)') return 'program (native, unattributed)';
  const rules: Array<[RegExp, string]> = [
    [/node:internal\/modules|node:internal\/vm|^compileFunction$|^compileSourceTextModule$/, 'module loading'],
    [/\/dnssd\//, 'mdns/dnssd'],
    [/node:_tls|node:tls|\/net\/tls-|\/net\/establish|\/net\/psk/, 'tls'],
    [/\/session\//, 'session'],
    [/\/net\//, 'net'],
    [/\/harness\//, 'lab peer (status/metrics/events)'],
    [/node:dgram/, 'udp (dgram)'],
    [/node:net|node:stream|node:internal\/streams/, 'tcp/streams'],
  ];
  for (const s of stack) for (const [re, name] of rules) if (re.test(s.url) || re.test(s.functionName)) return name;
  return f.url.startsWith('node:') ? 'node internals (other)' : 'other';
}

function load(paths: string[]): Array<[string, Profile]> {
  const files: string[] = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) if (f.endsWith('.cpuprofile')) files.push(join(p, f));
    else files.push(p);
  }
  return files.map((f) => [f, JSON.parse(readFileSync(f, 'utf8')) as Profile]);
}

function main(): void {
  const args = process.argv.slice(2);
  const ti = args.indexOf('--top');
  const top = ti >= 0 ? Number(args[ti + 1]) : 30;
  const paths = args.filter((a, i) => !a.startsWith('--') && (ti < 0 || i !== ti + 1));
  const byCat = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byFn = new Map<string, number>();
  let total = 0;
  const profiles = load(paths);
  for (const [, prof] of profiles) {
    const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const catCache = new Map<number, string>();
    const stackOf = (id: number): CallFrame[] => {
      const s: CallFrame[] = [];
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) s.push((nodes.get(cur) as ProfileNode).callFrame);
      return s;
    };
    // Each sample is one sampling interval of CPU (the median gap): the gaps themselves are
    // wall time, and a process starved of CPU (100 processes on 2 cores) waits between samples.
    const gaps = [...prof.timeDeltas].sort((a, b) => a - b);
    const interval = (gaps[Math.floor(gaps.length / 2)] ?? 1000) / 1000;
    for (let i = 0; i < prof.samples.length; i++) {
      const id = prof.samples[i] as number;
      const dt = interval;
      const n = nodes.get(id) as ProfileNode;
      let cat = catCache.get(id);
      if (cat === undefined) {
        cat = category(n.callFrame, stackOf(id));
        catCache.set(id, cat);
      }
      if (cat === 'idle') continue;
      total += dt;
      byCat.set(cat, (byCat.get(cat) ?? 0) + dt);
      const file = n.callFrame.url.replace(/^.*\/dist\//, '') || `(${n.callFrame.functionName})`;
      byFile.set(file, (byFile.get(file) ?? 0) + dt);
      const fn = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
      byFn.set(fn, (byFn.get(fn) ?? 0) + dt);
    }
  }
  const k = profiles.length;
  const show = (title: string, m: Map<string, number>, limit: number): void => {
    console.log(`\n${title} (ms per profile, of ${(total / k).toFixed(0)} ms busy per profile; ${k} profiles)`);
    for (const [name, ms] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      console.log(`  ${(ms / k).toFixed(0).padStart(7)}  ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${name}`);
    }
  };
  show('by category (self time, attributed to the nearest layer on the stack)', byCat, 20);
  show('by file (self time)', byFile, top);
  show('by function (self time)', byFn, top);
}

main();
