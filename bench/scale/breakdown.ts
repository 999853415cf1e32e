/**
 * Where one process's RSS goes (docs/memory.md "Breakdown"), in a fresh process per stage of this
 * Node binary, after two full GCs:
 *
 *   node dist/bench/scale/breakdown.js [--stage bare|import|lone|modules] [--modules a.js,b.js] [--settle 15] [--runs 3] [--json]
 *   node dist/bench/scale/breakdown.js --entry /path/to/bundle.js   (import that file instead of dist/src/index.js)
 *
 * bare: Node and this script's own imports; import: the public API; lone: a PSK session
 * advertising and browsing on `lo`; modules: only the listed files of dist/src (e.g.
 * `dnssd/index.js,path/index.js`), to see what one module family costs on its own. Without
 * --stage, runs bare, import and lone.
 *
 * From /proc/self/smaps, per mapping: file-backed pages (the node binary, shared libraries),
 * and anonymous ones sorted into glibc's main malloc arena (`[heap]`), the malloc arenas of
 * other threads (64 MiB-aligned reservations), thread stacks (8 MiB reservations behind a guard
 * page), V8's heap pages (256 KiB-aligned mappings, as V8 allocates its pages), and the rest
 * (large malloc chunks, which glibc mmaps on their own, and other native allocations). Also the
 * V8 heap spaces, external memory, the process's threads by name, and the number of our own
 * ESM modules loaded (counted by a module.register() hook is not possible on every line, so by
 * walking the import graph from what was imported: a lower bound, static imports only).
 */
import { importLibrary } from './entry.js';
import { readFileSync, readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';

const KiB = 1024;
const MiB = 1024 * KiB;

interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  rss: number;
  privateDirty: number;
  anonymous: number;
}

function mappings(): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: BigInt(`0x${head[1] as string}`), end: BigInt(`0x${head[2] as string}`), perms: head[3] as string, path: head[4] ?? '', rss: 0, privateDirty: 0, anonymous: 0 };
      out.push(cur);
      continue;
    }
    const f = /^(Rss|Private_Dirty|Anonymous):\s+(\d+) kB/.exec(line);
    if (f && cur) {
      const kb = Number(f[2]) * KiB;
      if (f[1] === 'Rss') cur.rss = kb;
      else if (f[1] === 'Private_Dirty') cur.privateDirty = kb;
      else cur.anonymous = kb;
    }
  }
  return out;
}

export interface Breakdown {
  stage: string;
  rss: number;
  fileBacked: { node: number; libs: number; other: number };
  anonymous: { total: number; mallocMain: number; mallocArenas: number; arenaCount: number; threadStacks: number; v8Pages: number; other: number };
  privateDirty: number;
  heap: Record<string, number>;
  external: number;
  arrayBuffers: number;
  threads: Record<string, number>;
}

function classify(stage: string): Breakdown {
  const maps = mappings();
  const fileBacked = { node: 0, libs: 0, other: 0 };
  const anon = { total: 0, mallocMain: 0, mallocArenas: 0, arenaCount: 0, threadStacks: 0, v8Pages: 0, other: 0 };
  let privateDirty = 0;
  const ARENA = 64n * BigInt(MiB);
  const STACK = 8n * BigInt(MiB);
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i] as Mapping;
    privateDirty += m.privateDirty;
    const fileRss = m.rss - m.anonymous;
    if (m.path.startsWith('/')) {
      if (/\/node$/.test(m.path)) fileBacked.node += fileRss;
      else if (/\.so/.test(m.path) || m.path.endsWith('.node')) fileBacked.libs += fileRss;
      else fileBacked.other += fileRss;
    } else if (fileRss > 0) fileBacked.other += fileRss;
    if (m.anonymous === 0) continue;
    anon.total += m.anonymous;
    const next = maps[i + 1];
    const prev = maps[i - 1];
    const size = m.end - m.start;
    if (m.path === '[heap]') anon.mallocMain += m.anonymous;
    else if (m.path === '[stack]') anon.threadStacks += m.anonymous;
    else if (m.path === '' && m.start % ARENA === 0n && next && next.perms.startsWith('---') && next.end - m.start === ARENA) {
      // A thread's malloc arena: a 64 MiB-aligned reservation, the used part read-write.
      anon.mallocArenas += m.anonymous;
      anon.arenaCount++;
    } else if (m.path === '' && prev && prev.perms.startsWith('---') && prev.end === m.start && prev.end - prev.start <= 64n * BigInt(KiB) && size >= STACK - 64n * BigInt(KiB) && size <= STACK) {
      anon.threadStacks += m.anonymous;
    } else if (m.path === '' && m.start % (256n * BigInt(KiB)) === 0n && size % (256n * BigInt(KiB)) === 0n) anon.v8Pages += m.anonymous;
    else anon.other += m.anonymous;
  }
  const threads: Record<string, number> = {};
  for (const t of readdirSync('/proc/self/task')) {
    const name = readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
    threads[name] = (threads[name] ?? 0) + 1;
  }
  const heap: Record<string, number> = {};
  for (const s of getHeapSpaceStatistics()) heap[s.space_name] = s.physical_space_size;
  const mu = process.memoryUsage();
  // RSS as the sum of the mappings read above: process.memoryUsage() after reading smaps would
  // count the garbage that reading made.
  const rss = maps.reduce((sum, m) => sum + m.rss, 0);
  return { stage, rss, fileBacked, anonymous: anon, privateDirty, heap, external: mu.external, arrayBuffers: mu.arrayBuffers, threads };
}

function fullGc(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = join(here, '..', '..', 'src');
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function subject(stage: string, modules: string[], settleMs: number, entry: string | undefined): Promise<void> {
  if (stage === 'modules') {
    for (const m of modules) await import(m.startsWith('node:') ? m : pathToFileURL(join(srcDir, m)).href);
  } else if (stage !== 'bare') {
    const { PeerSession } = (entry ? await import(pathToFileURL(entry).href) : await importLibrary()) as typeof import('../../src/index.js');
    if (stage === 'lone') {
      const s = new PeerSession({ serviceType: `bd${process.pid.toString(36)}`, security: { mode: 'psk', key: '00112233445566778899aabbccddeeff' }, interfaces: ['lo'] });
      await s.start();
      await delay(settleMs);
      fullGc();
      console.log(JSON.stringify(classify(stage)));
      await s.close();
      process.exit(0);
    }
  }
  fullGc();
  console.log(JSON.stringify(classify(stage === 'modules' ? modules.join(',') : stage)));
}

function runStage(args: string[]): Promise<Breakdown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--role', 'subject', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Breakdown);
      } catch {
        reject(new Error(`stage ${args.join(' ')} exited ${String(code)}: ${out}`));
      }
    });
  });
}

/** The run with the median RSS (whole rows, so the parts add up). */
function medianRow(rows: Breakdown[]): Breakdown {
  return [...rows].sort((a, b) => a.rss - b.rss)[(rows.length - 1) >> 1] as Breakdown;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string', default: 'main' },
      stage: { type: 'string' },
      modules: { type: 'string', default: '' },
      settle: { type: 'string', default: '15' },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      entry: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(`usage: node dist/bench/scale/breakdown.js [options]   (where one process's RSS goes; docs/memory.md "Breakdown")
  --stage S        bare | import | lone | modules (default: bare, import and lone)
  --modules LIST   with --stage modules: files of dist/src to import alone (e.g. dnssd/index.js,node:tls)
  --settle SEC     how long the lone session runs on lo before it is measured (15)
  --runs N         fresh processes per stage; the one with the median RSS is shown (3)
  --entry PATH     import this file (e.g. a bundle) instead of the package entry
  --json           one JSON line instead of the table`);
    return;
  }
  const modules = values.modules.split(',').filter(Boolean);
  if (values.role === 'subject') return subject(values.stage ?? 'bare', modules, Number(values.settle) * 1000, values.entry);
  const stages = values.stage ? [values.stage] : ['bare', 'import', 'lone'];
  const rows: Breakdown[] = [];
  for (const stage of stages) {
    const runs: Breakdown[] = [];
    for (let i = 0; i < Number(values.runs); i++) runs.push(await runStage(['--stage', stage, '--modules', values.modules, '--settle', values.settle, ...(values.entry ? ['--entry', values.entry] : [])]));
    rows.push(medianRow(runs));
  }
  if (values.json) {
    console.log(JSON.stringify({ node: process.version, rows }));
    return;
  }
  const f = (x: number): string => (x / MiB).toFixed(1);
  console.log(`node ${process.version}, MiB after full GC, the run with the median RSS of ${values.runs}`);
  console.log('| stage | RSS | file: node / libs / other | anon | malloc main / arenas (n) | thread stacks | V8 pages | other anon | private dirty | new / old / code / large / trusted space | external | threads |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const h = (n: string): string => f(r.heap[n] ?? 0);
    const threads = Object.entries(r.threads).map(([n, c]) => `${n}×${c}`).join(' ');
    console.log(`| ${r.stage} | ${f(r.rss)} | ${f(r.fileBacked.node)} / ${f(r.fileBacked.libs)} / ${f(r.fileBacked.other)} | ${f(r.anonymous.total)} | ${f(r.anonymous.mallocMain)} / ${f(r.anonymous.mallocArenas)} (${r.anonymous.arenaCount}) | ${f(r.anonymous.threadStacks)} | ${f(r.anonymous.v8Pages)} | ${f(r.anonymous.other)} | ${f(r.privateDirty)} | ${h('new_space')} / ${h('old_space')} / ${h('code_space')} / ${h('large_object_space')} / ${f((r.heap['trusted_space'] ?? 0) + (r.heap['trusted_large_object_space'] ?? 0))} | ${f(r.external)} | ${threads} |`);
  }
}

await main();
