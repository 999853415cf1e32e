/**
 * Time to connected, interleaved A/B (issue 15, "Connecting fast"; bench/session/README.md,
 * "Time to connected"). One client process loads one or two builds of peerlink and rotates
 * raw TLS-PSK / build A / build B connect by connect, so load swings hit all of them alike;
 * each build's PeerSession listens in its own server process (with a raw TLS server beside
 * it). Each session connect is a fresh client PeerSession: `start()`, timed `connect()`,
 * `close()`, as in the bench's `connect` row. With --cpu-prof both sides write V8 CPU
 * profiles, summarised by self time per function and file afterwards.
 *
 *   node dist/bench/session/connect-ab.js [--builds DIST[,DIST]] [--connects N] [--cpu-prof DIR]
 *                                         [--no-raw] [--summary FILE.cpuprofile]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { KEY_HEX, rawConnect, sessionOptions, tlsServerOptions } from './common.js';

const HELP = `connect-ab: time to connected, raw TLS-PSK vs one or two builds, interleaved.

  node dist/bench/session/connect-ab.js [options]

  --builds A[,B]      dist directories to compare (default: this build's dist)
  --connects N        connects per variant (default 300)
  --no-raw            skip the raw TLS-PSK connects
  --cpu-prof DIR      run both sides with --cpu-prof, profiles in DIR/{client,server-*}, then
                      print self time by file and function (only one build is sensible then)
  --callers NAME      with --summary: the call stacks of a function's self time
  --summary FILE      just print the self-time summary of a .cpuprofile (or a directory of them)
  --help              this text

Prints p25/p50/p90 per variant (ms) and the ratios to raw.`;

interface SessionLike {
  start(): Promise<void>;
  connect(e: unknown): Promise<unknown>;
  close(): Promise<void>;
  readonly listenPort: number;
}
interface Build {
  PeerSession: new (o: ReturnType<typeof sessionOptions>) => SessionLike;
  hostPort: (h: string, p: number) => unknown;
}

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const thisDist = resolve(fileURLToPath(new URL('../..', import.meta.url)));

async function load(dist: string): Promise<Build> {
  const s = (await import(pathToFileURL(join(dist, 'src/session/index.js')).href)) as { PeerSession: Build['PeerSession'] };
  const n = (await import(pathToFileURL(join(dist, 'src/net/index.js')).href)) as { Endpoint: { hostPort: Build['hostPort'] } };
  return { PeerSession: s.PeerSession, hostPort: (h, p) => n.Endpoint.hostPort(h, p) };
}

/** One server process for every build (a second process would be scheduled differently). */
async function server(dists: string[]): Promise<void> {
  const sessions: SessionLike[] = [];
  for (const d of dists) {
    const b = await load(d);
    const s = new b.PeerSession(sessionOptions('ab-server'));
    await s.start();
    sessions.push(s);
  }
  const raw = tls.createServer(tlsServerOptions(), (sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const addr = raw.address();
  process.stdout.write(`${JSON.stringify({ sessions: sessions.map((s) => s.listenPort), raw: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
  // Ends when the client closes our stdin (so --cpu-prof writes its profile on a clean exit).
  process.stdin.resume();
  process.stdin.on('end', () => {
    raw.close();
    void Promise.all(sessions.map((s) => s.close())).then(() => process.exit(0));
  });
}

interface Ports {
  sessions: number[];
  raw: number;
}

function startServer(dists: string[], prof: string | undefined): { c: ChildProcess; ports: Promise<Ports> } {
  const args = [...(prof ? ['--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', prof] : []), fileURLToPath(import.meta.url), '--serve', dists.join(',')];
  const c = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, BENCH_PSK: KEY_HEX } });
  const ports = new Promise<Ports>((res, rej) => {
    c.once('exit', (code) => rej(new Error(`server exited (${String(code)})`)));
    createInterface({ input: c.stdout as NodeJS.ReadableStream }).once('line', (l) => res(JSON.parse(l) as Ports));
  });
  return { c, ports };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

interface ProfNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfNode[];
  samples: number[];
  timeDeltas: number[];
}

function summary(path: string): void {
  const files = path.endsWith('.cpuprofile') ? [path] : readdirSync(path).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(path, f));
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    const byFile = new Map<string, number>();
    const byFn = new Map<string, number>();
    let total = 0;
    let busy = 0;
    for (const [id, us] of self) {
      const n = byId.get(id);
      if (!n) continue;
      total += us;
      const url = n.callFrame.url;
      const file = url.includes('/dist/src/') ? `ours ${url.slice(url.indexOf('/dist/src/') + 10)}` : url.startsWith('node:') ? url : url === '' ? n.callFrame.functionName : url.includes('/dist/') ? `bench ${url.slice(url.lastIndexOf('/') + 1)}` : url;
      if (file !== '(idle)') busy += us;
      byFile.set(file, (byFile.get(file) ?? 0) + us);
      const fn = `${n.callFrame.functionName || '(anon)'} ${file}:${n.callFrame.lineNumber + 1}`;
      byFn.set(fn, (byFn.get(fn) ?? 0) + us);
    }
    let ours = 0;
    for (const [k, v] of byFile) if (k.startsWith('ours ')) ours += v;
    console.log(`\n== ${f}: ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms not idle, ours (dist/src) ${(ours / 1000).toFixed(0)} ms`);
    const top = (m: Map<string, number>, n: number, title: string): void => {
      console.log(`-- ${title}`);
      for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${(v / 1000).toFixed(1).padStart(9)} ms ${((100 * v) / busy).toFixed(1).padStart(5)} %  ${k}`);
    };
    top(byFile, 30, 'self time by file');
    top(byFn, 45, 'self time by function');
    const who = opt('callers');
    if (who !== undefined) {
      // Self time of functions named `who`, by their call stacks (3 frames up).
      const parent = new Map<number, number>();
      for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
      const name = (id: number | undefined): string => {
        const n = id === undefined ? undefined : byId.get(id);
        return n ? `${n.callFrame.functionName || '(anon)'}@${n.callFrame.url.slice(n.callFrame.url.lastIndexOf('/') + 1)}:${n.callFrame.lineNumber + 1}` : '-';
      };
      const stacks = new Map<string, number>();
      for (const [id, us] of self) {
        if (byId.get(id)?.callFrame.functionName !== who) continue;
        const chain: string[] = [];
        for (let x: number | undefined = parent.get(id), i = 0; x !== undefined && i < 4; x = parent.get(x), i++) chain.push(name(x));
        const k = chain.join(' < ');
        stacks.set(k, (stacks.get(k) ?? 0) + us);
      }
      top(stacks, 20, `callers of ${who}`);
    }
  }
}

async function client(): Promise<void> {
  const builds = (opt('builds') ?? thisDist).split(',').map((d) => resolve(d));
  const n = Number(opt('connects') ?? 300);
  const prof = opt('cpu-prof');
  const raw = !argv.includes('--no-raw');
  if (prof) for (const d of ['client', 'server']) mkdirSync(join(prof, d), { recursive: true });
  const loaded = await Promise.all(builds.map((d) => load(d)));
  const srv = startServer(builds, prof ? join(prof, 'server') : undefined);
  const ports = await srv.ports;
  const times: number[][] = Array.from({ length: (raw ? 1 : 0) + loaded.length }, () => []);
  const names = [...(raw ? ['raw'] : []), ...builds.map((d, i) => `${String.fromCharCode(65 + i)} ${d}`)];
  let seq = 0;
  const rawPort = ports.raw;
  const variants = (raw ? 1 : 0) + loaded.length;
  for (let i = 0; i < n; i++) {
    // The order rotates each round (what runs first after a pause, what runs right after
    // another variant's close): each variant gets each place alike.
    for (let j = 0; j < variants; j++) {
      const k = (i + j) % variants;
      // Lets the previous connect's close finish (both processes) before the next is timed.
      await new Promise((r) => setTimeout(r, 2));
      if (raw && k === 0) {
        const t0 = performance.now();
        const s = await rawConnect(rawPort);
        times[k]?.push(performance.now() - t0);
        s.destroy();
        continue;
      }
      const b = k - (raw ? 1 : 0);
      const build = loaded[b] as Build;
      const s = new build.PeerSession(sessionOptions(`ab-c${seq++}`));
      await s.start();
      const e = build.hostPort('127.0.0.1', ports.sessions[b] ?? 0);
      const t0 = performance.now();
      await s.connect(e);
      times[k]?.push(performance.now() - t0);
      await s.close();
    }
  }
  const base = raw ? times[0] : undefined;
  for (let k = 0; k < times.length; k++) {
    const t = times[k] as number[];
    const ratio = (p: number): string => (base && k > 0 ? ` (${(pct(t, p) / pct(base, p)).toFixed(2)})` : '');
    console.log(`${(names[k] ?? '').padEnd(30)} p25 ${pct(t, 25).toFixed(3)}${ratio(25)}  p50 ${pct(t, 50).toFixed(3)}${ratio(50)}  p90 ${pct(t, 90).toFixed(3)} ms  (n=${t.length})`);
  }
  const exited = new Promise((r) => srv.c.once('exit', r));
  srv.c.stdin?.end();
  await exited;
}

if (argv.includes('--help')) console.log(HELP);
else if (argv.includes('--serve')) await server((opt('serve') ?? thisDist).split(','));
else if (opt('summary')) summary(opt('summary') ?? '');
else await client();
