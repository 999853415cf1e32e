/**
 * Where a session's memory goes, per stage, each stage in a fresh process of this Node binary:
 * bare Node, after `import` of the library, a started lone session, and one session with N
 * connected peers (the peers are sessions in a second process on loopback, connecting by address:
 * no mDNS, so only the subject's per-peer cost is measured).
 *
 *   node dist/bench/scale/memory.js [--peers 8,31] [--security psk|none] [--settle 15] [--runs 1] [--json]
 *   node dist/bench/scale/memory.js --trim …   (malloc_trim(0) before each sample: live native memory only)
 *   node --max-semi-space-size=1 dist/bench/scale/memory.js …   (flags given to node are passed to every stage)
 *   node dist/bench/scale/memory.js --discover --peers 31   (the peers advertise on lo, the subject
 *     browses, finds and dials them, as in the scale lab; the peers do not browse each other)
 *
 * Each session stage waits --settle seconds first: idle, V8 shrinks a young generation the start-up
 * grew (after ~10 s), so a shorter settle reports a few MiB more. Every figure is taken after two full GCs, except "RSS before GC" (what top shows: with garbage
 * the young generation has not collected yet). Columns: RSS; "private" = anonymous and heap pages
 * this process alone dirtied (smaps Private_Dirty): what each more process really costs, as the
 * node binary's own pages (file-backed, clean, 32–48 MiB of RSS) are shared by every process
 * running that binary; V8 heap used / committed, its new (young) and old space and code; external
 * and ArrayBuffers; the third-party packages loaded.
 *
 * The library is imported as an app imports it, from the package's entry (dist/src/bundle.js:
 * `node scripts/bundle.mjs` after tsc); PEERLINK_BENCH_ENTRY=files imports dist/src/index.js.
 */
import { entryKind, importLibrary } from './entry.js';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';

const MiB = 1024 * 1024;
const PSK = '00112233445566778899aabbccddeeff';

export interface MemorySample {
  stage: string;
  peers: number;
  rssBeforeGc: number;
  rss: number;
  privateDirty: number;
  /** Private dirty pages of the main malloc arena (`[heap]`, brk): native allocations, not V8's. */
  mallocHeap: number;
  heapUsed: number;
  heapCommitted: number;
  newSpace: number;
  oldSpace: number;
  codeSpace: number;
  external: number;
  arrayBuffers: number;
  packages: string[];
}

function fullGc(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
}

function smapsRollup(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Private_Dirty of the `[heap]` mapping (glibc's main arena). */
function brkHeapDirty(): number {
  try {
    const text = readFileSync('/proc/self/smaps', 'utf8');
    const at = text.indexOf('[heap]\n');
    if (at < 0) return 0;
    const m = /^Private_Dirty:\s+(\d+) kB/m.exec(text.slice(at));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Third-party packages in the CommonJS cache (ESM-only ones do not show; ours are all CJS). */
function packagesLoaded(): string[] {
  const names = new Set<string>();
  for (const file of Object.keys(createRequire(import.meta.url).cache)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file);
    if (m) names.add(m[1] as string);
  }
  return [...names].sort();
}

/**
 * glibc's malloc_trim(0) through koffi (--trim): returns free pages inside the malloc heap to
 * the kernel, so what remains of `[heap]` is live native allocations, not fragmentation.
 */
function mallocTrim(): void {
  const koffi = createRequire(import.meta.url)('koffi') as { load(path: string): { func(decl: string): (...args: unknown[]) => unknown } };
  koffi.load('libc.so.6').func('int malloc_trim(size_t pad)')(0);
}

function sample(stage: string, peers: number): MemorySample {
  const rssBeforeGc = process.memoryUsage().rss / MiB;
  fullGc();
  if (process.argv.includes('--trim')) mallocTrim();
  const m = process.memoryUsage();
  const space = (name: string): number => (getHeapSpaceStatistics().find((s) => s.space_name === name)?.physical_space_size ?? 0) / MiB;
  return {
    stage,
    peers,
    rssBeforeGc,
    rss: m.rss / MiB,
    privateDirty: smapsRollup('Private_Dirty'),
    mallocHeap: brkHeapDirty(),
    heapUsed: m.heapUsed / MiB,
    heapCommitted: m.heapTotal / MiB,
    newSpace: space('new_space'),
    oldSpace: space('old_space'),
    codeSpace: space('code_space'),
    external: m.external / MiB,
    arrayBuffers: m.arrayBuffers / MiB,
    packages: packagesLoaded(),
  };
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One stage, in this (fresh) process; prints one JSON line. */
async function subject(stage: string, peers: number, security: 'psk' | 'none', settleMs: number, discover: boolean): Promise<void> {
  if (stage === 'bare') {
    console.log(JSON.stringify(sample(stage, 0)));
    return;
  }
  const { PeerSession } = await importLibrary();
  if (stage === 'import') {
    console.log(JSON.stringify(sample(stage, 0)));
    return;
  }
  const sec = security === 'psk' ? { mode: 'psk' as const, key: PSK } : { mode: 'none' as const };
  const lone = stage === 'lone';
  // The lone session is what an app runs: advertising and browsing on `lo`. With peers, the subject
  // is dialled by address (no mDNS traffic of 31 other sessions to process).
  // A service type of this process's own: runs side by side (or other lone sessions on lo) must
  // not find and connect to each other.
  const service = `md${process.pid.toString(36)}`;
  const s = new PeerSession({ serviceType: service, security: sec, interfaces: ['lo'], advertise: lone || discover, browse: lone || discover });
  await s.start();
  if (!lone) {
    const connected = new Set<string>();
    const all = new Promise<void>((resolve) => {
      s.on('peer', (p, state) => {
        if (state === 'connected') connected.add(p.id);
        else connected.delete(p.id);
        if (connected.size >= peers) resolve();
      });
    });
    const swarm = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--role', 'swarm', '--peers', String(peers), '--port', String(s.listenPort), '--security', security, '--service', service, ...(discover ? ['--discover'] : [])], { stdio: ['ignore', 'ignore', 'inherit'] });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${connected.size} of ${peers} peers connected in 120 s`)), 120_000);
    });
    await Promise.race([all, deadline]);
    clearTimeout(timer);
    await delay(settleMs);
    console.log(JSON.stringify(sample(stage, s.connectedPeers.length)));
    swarm.kill('SIGKILL');
  } else {
    await delay(settleMs);
    console.log(JSON.stringify(sample(stage, 0)));
  }
  await s.close();
}

/** N sessions in this process, each connecting to the subject's port on loopback. */
async function swarm(peers: number, port: number, security: 'psk' | 'none', discover: boolean, service: string): Promise<void> {
  const { PeerSession, Endpoint } = await importLibrary();
  const sec = security === 'psk' ? { mode: 'psk' as const, key: PSK } : { mode: 'none' as const };
  for (let i = 0; i < peers; i++) {
    // With --discover they advertise and the subject finds and dials them; they do not browse:
    // 31 sessions meshing among themselves in one process starve it (keepalive timeouts).
    const s = new PeerSession({ serviceType: service, security: sec, interfaces: ['lo'], advertise: discover, browse: false });
    await s.start();
    if (!discover) void s.connect(Endpoint.hostPort('127.0.0.1', port)).catch(() => undefined);
  }
  await delay(600_000); // killed by the subject
}

function runStage(args: string[]): Promise<MemorySample> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--role', 'subject', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as MemorySample);
      } catch {
        reject(new Error(`stage ${args.join(' ')} exited ${String(code)}: ${out}`));
      }
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string', default: 'main' },
      stage: { type: 'string', default: 'lone' },
      peers: { type: 'string', default: '8,31' },
      port: { type: 'string', default: '0' },
      security: { type: 'string', default: 'psk' },
      settle: { type: 'string', default: '15' },
      runs: { type: 'string', default: '1' },
      json: { type: 'boolean', default: false },
      discover: { type: 'boolean', default: false },
      service: { type: 'string', default: 'memdiet' },
      trim: { type: 'boolean', default: false },
    },
  });
  const security = values.security === 'none' ? 'none' : 'psk';
  const settleMs = Number(values.settle) * 1000;
  if (values.role === 'subject') return subject(values.stage, Number(values.peers), security, settleMs, values.discover);
  if (values.role === 'swarm') return swarm(Number(values.peers), Number(values.port), security, values.discover, values.service);

  const stages: { stage: string; peers: number }[] = [{ stage: 'bare', peers: 0 }, { stage: 'import', peers: 0 }, { stage: 'lone', peers: 0 }];
  for (const n of values.peers.split(',').filter(Boolean)) stages.push({ stage: 'peers', peers: Number(n) });
  const rows: MemorySample[] = [];
  for (const st of stages) {
    const runs: MemorySample[] = [];
    for (let i = 0; i < Number(values.runs); i++) runs.push(await runStage(['--stage', st.stage, '--peers', String(st.peers), '--security', security, '--settle', String(values.settle), ...(values.discover ? ['--discover'] : []), ...(values.trim ? ['--trim'] : [])]));
    const first = runs[0] as MemorySample;
    const med = (k: keyof MemorySample): number => median(runs.map((r) => r[k] as number));
    rows.push({ ...first, rssBeforeGc: med('rssBeforeGc'), rss: med('rss'), privateDirty: med('privateDirty'), mallocHeap: med('mallocHeap'), heapUsed: med('heapUsed'), heapCommitted: med('heapCommitted'), newSpace: med('newSpace'), oldSpace: med('oldSpace'), codeSpace: med('codeSpace'), external: med('external'), arrayBuffers: med('arrayBuffers') });
  }
  if (values.json) {
    console.log(JSON.stringify({ node: process.version, execArgv: process.execArgv, security, rows }));
    return;
  }
  const f = (x: number): string => x.toFixed(1);
  const lone = rows.find((r) => r.stage === 'lone');
  console.log(`node ${process.version} ${process.execArgv.join(' ')} library ${entryKind === 'bundle' ? 'dist/src/bundle.js' : 'dist/src/index.js (files)'}, security ${security}${values.discover ? ', peers by mDNS' : ''}, MiB, after full GC (median of ${values.runs})`);
  console.log('| stage | RSS before GC | RSS | × lone | private dirty (of it malloc [heap]) | heap used / committed | new / old / code space | external / ArrayBuffers | packages |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const name = r.stage === 'peers' ? `${r.peers} peers` : r.stage;
    const ratio = lone && r.stage === 'peers' ? (r.rss / lone.rss).toFixed(2) : '';
    console.log(`| ${name} | ${f(r.rssBeforeGc)} | ${f(r.rss)} | ${ratio} | ${f(r.privateDirty)} (${f(r.mallocHeap)}) | ${f(r.heapUsed)} / ${f(r.heapCommitted)} | ${f(r.newSpace)} / ${f(r.oldSpace)} / ${f(r.codeSpace)} | ${f(r.external)} / ${f(r.arrayBuffers)} | ${r.packages.join(' ') || '—'} |`);
  }
}

await main();
