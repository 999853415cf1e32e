/**
 * `npm run demo` — three peers on this machine, each its own process, find each other
 * with Bonjour on the loopback interface, connect over TLS with a pre-shared key, then
 * exchange messages, a byte stream and a file (with a progress bar and a verified
 * SHA-256), and shut down cleanly. Nothing leaves this machine: the peers use `lo` only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProgressRenderer, formatBytes, formatRate, type ProgressTask } from '../src/cli/progress.js';
import type { DemoCommand, DemoEvent } from './demo-protocol.js';

const NAMES = ['Alice', 'Bob', 'Carol'] as const;
type Name = (typeof NAMES)[number];
const STREAM_BYTES = 16 * 1024 * 1024;
const FILE_BYTES = 64 * 1024 * 1024;
/** The whole demo must finish well inside 30 s; each step gets a deadline. */
const STEP_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 28_000;

const out = new ProgressRenderer(process.stdout, process.env, { indent: '  ' });
const t0 = Date.now();
const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const say = (s = ''): void => out.log(s);
const step = (title: string, why: string): void => {
  say();
  say(`${out.paint('cyan', '▸')} ${out.paint('bold', title)}`);
  say(out.paint('dim', `  ${why}`));
};
const ok = (s: string): void => say(`  ${out.paint('green', '✓')} ${s}`);

interface Peer {
  name: Name;
  child: ChildProcess;
  events: DemoEvent[];
  connected: Set<string>;
  exited: Promise<number | null>;
}

const peers = new Map<Name, Peer>();
const waiters = new Set<() => void>();
/** Set when a peer process ends before the demo asked it to: every wait fails at once. */
let crashed: string | undefined;
let closing = false;

/** Resolves when `pred` holds (checked on every event), or rejects after the step timeout. */
function until(what: string, pred: () => boolean, ms = STEP_TIMEOUT_MS): Promise<void> {
  if (crashed !== undefined) return Promise.reject(new Error(crashed));
  if (pred()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const check = (): void => {
      if (crashed !== undefined) {
        clearTimeout(timer);
        waiters.delete(check);
        reject(new Error(crashed));
        return;
      }
      if (!pred()) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve();
    };
    waiters.add(check);
  });
}

function command(name: Name, cmd: DemoCommand): void {
  peers.get(name)?.child.send(cmd);
}

function find<E extends DemoEvent['ev']>(name: Name, ev: E, pred: (e: Extract<DemoEvent, { ev: E }>) => boolean = () => true): Extract<DemoEvent, { ev: E }> | undefined {
  return peers.get(name)?.events.find((e): e is Extract<DemoEvent, { ev: E }> => e.ev === ev && pred(e as Extract<DemoEvent, { ev: E }>));
}

function startPeer(name: Name, service: string, key: string, dir: string): Peer {
  const script = fileURLToPath(new URL('./demo-peer.js', import.meta.url));
  const child = fork(script, [name, service, dir], {
    env: { ...process.env, PEERLINK_DEMO_PSK: key },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const peer: Peer = {
    name,
    child,
    events: [],
    connected: new Set(),
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  child.once('exit', (code, signal) => {
    if (closing) return;
    crashed ??= `${name}'s process ended unexpectedly (${signal ?? `exit code ${String(code)}`})`;
    for (const w of [...waiters]) w();
  });
  child.on('message', (m) => {
    const e = m as DemoEvent;
    peer.events.push(e);
    if (e.ev === 'peer') {
      if (e.state === 'connected') peer.connected.add(e.peer);
      else peer.connected.delete(e.peer);
    }
    onEvent(peer, e);
    for (const w of [...waiters]) w();
  });
  return peer;
}

let fileTask: ProgressTask | undefined;
const pairsShown = new Set<string>();

function onEvent(peer: Peer, e: DemoEvent): void {
  switch (e.ev) {
    case 'peer': {
      if (e.state !== 'connected') break;
      const other = peers.get(e.peer as Name);
      const pair = [peer.name, e.peer].sort().join(' ⇄ ');
      if (other?.connected.has(peer.name) && !pairsShown.has(pair)) {
        pairsShown.add(pair);
        ok(`${pair} connected (TLS with the pre-shared key; one connection for the pair)`);
      }
      break;
    }
    case 'progress':
      fileTask ??= out.start('demo-file.bin', e.total, `  sending demo-file.bin (${formatBytes(e.total)}) from Carol to Alice`);
      fileTask.update(e);
      break;
    case 'error':
      say(`  ${out.paint('red', '✗')} ${peer.name}: ${e.message} (${e.code})`);
      break;
    default:
      break;
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'peerlink-demo-'));
  const service = `pldemo-${randomBytes(2).toString('hex')}`;
  const key = randomBytes(32).toString('hex');
  const overall = setTimeout(() => {
    say(`${out.paint('red', '✗')} the demo took longer than ${OVERALL_TIMEOUT_MS / 1000} s — stopping`);
    for (const p of peers.values()) p.child.kill('SIGKILL');
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  overall.unref();

  say(out.paint('bold', 'peerlink demo') + ' — the open successor to Multipeer Connectivity, on one machine');
  say(out.paint('dim', 'Three peers, each its own process, find each other with Bonjour (mDNS/DNS-SD), connect'));
  say(out.paint('dim', 'securely, and exchange messages, a stream and a file. Loopback only: nothing leaves this machine.'));
  try {
    step('Starting three peers: Alice, Bob and Carol', `Each advertises _${service}._tcp on lo and browses for the others; a random 256-bit pre-shared key secures every connection.`);
    for (const name of NAMES) {
      const dir = join(work, name);
      peers.set(name, startPeer(name, service, key, dir));
    }
    for (const name of NAMES) {
      await until(`${name} to start`, () => find(name, 'ready') !== undefined || find(name, 'error') !== undefined);
      const ready = find(name, 'ready');
      if (!ready) throw new Error(`${name} could not start: ${find(name, 'error')?.message ?? 'unknown error'}`);
      ok(`${name} is listening on port ${ready.port} and advertising itself`);
    }

    step('Discovery and connection', 'Each peer finds the other two by browsing, and every pair ends up with exactly one connection.');
    await until('every peer to connect to the other two', () => NAMES.every((n) => peers.get(n)!.connected.size === NAMES.length - 1));
    ok(`every peer has ${NAMES.length - 1} connected peers (${elapsed()} since start)`);

    step('Reliable messages', 'Alice sends one message to every connected peer; it arrives once, in order.');
    const greeting = 'Hello from Alice 👋';
    command('Alice', { cmd: 'say', text: greeting });
    for (const n of ['Bob', 'Carol'] as const) {
      await until(`${n} to hear Alice`, () => find(n, 'message', (e) => e.from === 'Alice') !== undefined);
      ok(`${n} received "${find(n, 'message', (e) => e.from === 'Alice')!.text}"`);
    }

    step('Streams', `Bob opens a byte stream to Carol (a connection of its own, with backpressure) and writes ${formatBytes(STREAM_BYTES)}.`);
    const streamStart = Date.now();
    command('Bob', { cmd: 'stream', to: 'Carol', bytes: STREAM_BYTES });
    await until('Carol to read the stream', () => find('Carol', 'stream', (e) => e.from === 'Bob') !== undefined && find('Bob', 'stream-sent') !== undefined);
    const got = find('Carol', 'stream', (e) => e.from === 'Bob')!;
    const sentStream = find('Bob', 'stream-sent')!;
    const streamSecs = (Date.now() - streamStart) / 1000;
    if (got.bytes !== sentStream.bytes || got.sha256 !== sentStream.sha256) throw new Error('the stream arrived damaged');
    ok(`Carol read ${formatBytes(got.bytes)} in ${streamSecs.toFixed(2)} s — SHA-256 matches what Bob wrote`);

    step('Resources (files)', 'Carol sends a file to Alice: it goes straight to a temporary file, is checked (size + SHA-256), then saved under its name.');
    const file = join(work, 'demo-file.bin');
    const content = randomBytes(FILE_BYTES);
    const expected = createHash('sha256').update(content).digest('hex');
    await writeFile(file, content);
    const fileStart = Date.now();
    command('Carol', { cmd: 'file', to: 'Alice', path: file, name: 'demo-file.bin' });
    await until('the file to arrive', () => find('Alice', 'resource-done') !== undefined && find('Carol', 'file-sent') !== undefined, 20_000);
    const done = find('Alice', 'resource-done')!;
    const secs = (Date.now() - fileStart) / 1000;
    const rate = formatRate(secs > 0 ? done.size / secs : done.size);
    if (fileTask) fileTask.finish(true, `demo-file.bin: ${formatBytes(done.size)} in ${secs.toFixed(2)} s (${rate})`);
    else ok(`demo-file.bin: ${formatBytes(done.size)} in ${secs.toFixed(2)} s (${rate})`);
    if (done.sha256 !== expected) throw new Error(`SHA-256 mismatch: expected ${expected}, Alice saved ${done.sha256}`);
    ok(`Alice saved ${done.path}`);
    ok(`SHA-256 verified: ${done.sha256}`);

    step('Shutting down', 'Each peer says goodbye, withdraws its Bonjour service and closes its connections.');
    closing = true;
    for (const name of NAMES) command(name, { cmd: 'close' });
    const codes = await Promise.race([
      Promise.all(NAMES.map((n) => peers.get(n)!.exited)),
      new Promise<null>((r) => setTimeout(() => r(null), 8000).unref()),
    ]);
    if (codes === null || codes.some((c) => c !== 0)) throw new Error(`a peer did not exit cleanly (${JSON.stringify(codes)})`);
    ok('all three peers exited cleanly');
    say();
    say(`${out.paint('green', 'Done')} in ${elapsed()}. Next: run ${out.paint('bold', 'node bin/peerlink.js chat --service demo --interface lo')} in two terminals, or read README.md.`);
  } finally {
    clearTimeout(overall);
    out.close();
    for (const p of peers.values()) if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await rm(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    out.close();
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    for (const p of peers.values()) p.child.kill('SIGKILL');
    process.exit(1);
  },
);
