/**
 * Session benchmark: PeerSession against the same traffic written directly on `node:tls`
 * with the same PSK cipher suites, peers in separate processes, on 127.0.0.1 (no discovery:
 * `connect()` by address, so nothing is multicast).
 *
 *   npm run bench:session [-- --rounds 3 --messages 1000000 --bulk-mib 512 --rtt 2000 --connects 20]
 *   npm run bench:session -- --scenarios messages,bulk --rounds 5 --no-libp2p
 *   npm run bench:session -- --scenarios resource --resource-gib 1,10 [--resource-rounds 1]
 *   npm run bench:session -- --scenarios resume [--resume-mib 512]   (cost of resuming: resume.ts)
 *   (also: --sides session|raw to profile one side, --no-warmup, --libp2p-messages, --libp2p-bulk-mib)
 *
 * Every scenario runs `--rounds` times, session and raw TLS alternating which goes first,
 * and the table shows medians (this machine's run-to-run noise is ±30 %). The raw side is
 * what a competent app would write: one length prefix per message, frames merged into
 * 64 KiB writes, drain-based backpressure, and a receiver that hands each message to a
 * handler as its own Buffer view (as the session does). When bench/libp2p is installed
 * (`npm run bench:libp2p:install`), js-libp2p (tcp + noise + yamux) runs last, alone, with
 * the same message and chunk sizes (fewer messages by default: `--libp2p-messages`; it is
 * ~50x slower). `--resource-gib 1,10` adds sendResource of files of those sizes (sparse, in a
 * temp dir, deleted afterwards) against a raw TLS file transfer, comparing the receiving
 * process's peak RSS.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import tls, { type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { PeerSession } from '../../src/session/index.js';
import type { PeerID } from '../../src/session/peer-id.js';
import { Endpoint } from '../../src/net/index.js';
import { PSK_TLS12_CIPHERS, PSK_TLS13_SUITES } from '../../src/net/psk.js';
import { resumeOnce } from './resume.js';

const PSK_CIPHERS = `${PSK_TLS13_SUITES}:${PSK_TLS12_CIPHERS}`;
const KEY_HEX = process.env.BENCH_PSK ?? randomBytes(32).toString('hex');
const MSG_SIZE = 100;
const CHUNK = 64 * 1024;

type ChildMsg =
  | { type: 'ready'; sessionPort: number; rawPort: number }
  | { type: 'done'; what: string; count: number; bytes: number; maxRssKiB?: number }
  | { type: 'cpu'; micros: number };
type ParentMsg = { type: 'expect'; what: 'messages' | 'raw-messages'; count: number } | { type: 'echo'; on: boolean } | { type: 'cpu' } | { type: 'quit' };

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function argList(name: string, dflt: string): string[] {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? (process.argv[i + 1] ?? '') : dflt;
  return v.split(',').filter((x) => x.length > 0);
}

function sessionOptions(displayName: string, extra: { resources?: { directory: string } } = {}): ConstructorParameters<typeof PeerSession>[0] {
  return { serviceType: 'bench', displayName, security: { mode: 'psk', key: KEY_HEX }, advertise: false, browse: false, maxMessageSize: 1 << 20, ...extra };
}

function tlsServerOptions(): tls.TlsOptions {
  const keyBuf = Buffer.from(KEY_HEX, 'hex');
  return { ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', pskCallback: () => keyBuf };
}

// ---- the child: receiver / echo side -------------------------------------------------------

async function child(): Promise<void> {
  const send = (m: ChildMsg): void => {
    process.send?.(m);
  };
  const session = new PeerSession(sessionOptions('bench-b'));
  let expect = 0;
  let got = 0;
  let echo = false;
  session.on('message', (data, peer) => {
    if (echo) {
      session.send(data, { to: peer }).catch(() => undefined);
      return;
    }
    if (++got === expect) send({ type: 'done', what: 'messages', count: got, bytes: 0 });
  });
  session.on('stream', (stream: Duplex) => {
    let bytes = 0;
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.on('end', () => {
      send({ type: 'done', what: 'stream', count: 1, bytes });
      stream.end();
    });
  });
  await session.start();

  let rawExpect = 0;
  let rawGot = 0;
  let rawBytes = 0;
  // What an app does with each raw message: gets it as its own Buffer view, like the session's `message` event.
  const onRawMessage = (payload: Buffer): void => {
    rawBytes += payload.length;
    if (++rawGot === rawExpect) send({ type: 'done', what: 'raw-messages', count: rawGot, bytes: rawBytes });
  };
  const server = tls.createServer(tlsServerOptions(), (sock: TLSSocket) => {
    sock.setNoDelay(true);
    let pending: Buffer[] = [];
    let held = 0;
    let bulk = 0;
    let mode: 'frames' | 'bulk' | undefined;
    sock.on('data', (chunk: Buffer) => {
      if (mode === undefined) mode = chunk[0] === 0xff ? 'bulk' : 'frames';
      if (mode === 'bulk') {
        bulk += chunk.length;
        return;
      }
      pending.push(chunk);
      held += chunk.length;
      let buf = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, held);
      let off = 0;
      const replies: Buffer[] = [];
      while (buf.length - off >= 4) {
        const len = buf.readUInt32BE(off);
        if (buf.length - off - 4 < len) break;
        if (echo) replies.push(buf.subarray(off, off + 4 + len));
        else onRawMessage(buf.subarray(off + 4, off + 4 + len));
        off += 4 + len;
      }
      if (replies.length) sock.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
      buf = buf.subarray(off);
      pending = buf.length ? [buf] : [];
      held = buf.length;
    });
    sock.on('end', () => {
      if (mode === 'bulk') send({ type: 'done', what: 'raw-bulk', count: 1, bytes: bulk });
      sock.end();
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('message', (m: ParentMsg) => {
    if (m.type === 'expect') {
      if (m.what === 'messages') {
        expect = m.count;
        got = 0;
      } else {
        rawExpect = m.count;
        rawGot = 0;
      }
    } else if (m.type === 'echo') echo = m.on;
    else if (m.type === 'cpu') {
      const u = process.cpuUsage();
      send({ type: "cpu", micros: u.user + u.system });
    } else if (m.type === 'quit') {
      void session.close().finally(() => process.exit(0));
    }
  });
  send({ type: 'ready', sessionPort: session.listenPort, rawPort: (server.address() as AddressInfo).port });
}

/**
 * A fresh process per resource receive, so its peak RSS (getrusage maxrss) belongs to that
 * one transfer. `session`: a PeerSession saving into a temp dir; `raw`: a TLS server that
 * reads an 8-byte size, then streams the bytes to a file while hashing them (what an app
 * would write by hand), and answers with the digest.
 */
async function resourceChild(kind: string, dir: string): Promise<void> {
  const send = (m: ChildMsg): void => {
    process.send?.(m);
  };
  const maxRssKiB = (): number => process.resourceUsage().maxRSS;
  if (kind === 'session') {
    const session = new PeerSession(sessionOptions('bench-r', { resources: { directory: dir } }));
    session.on('resource', (incoming) => {
      incoming.done.then(
        (r) => send({ type: 'done', what: 'resource', count: 1, bytes: r.size, maxRssKiB: maxRssKiB() }),
        (err: unknown) => send({ type: 'done', what: `resource failed: ${String(err)}`, count: 0, bytes: 0 }),
      );
    });
    await session.start();
    process.on('message', (m: ParentMsg) => m.type === 'quit' && void session.close().finally(() => process.exit(0)));
    send({ type: 'ready', sessionPort: session.listenPort, rawPort: 0 });
    return;
  }
  const server = tls.createServer(tlsServerOptions(), (sock: TLSSocket) => {
    sock.once('readable', () => {
      const head = sock.read(8) as Buffer | null;
      if (!head) return;
      const size = Number(head.readBigUInt64BE(0));
      const hash = createHash('sha256');
      let bytes = 0;
      const out = createWriteStream(join(dir, 'raw.bin'));
      sock.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
        if (!out.write(c)) {
          sock.pause();
          out.once('drain', () => sock.resume());
        }
        if (bytes === size) {
          out.end(() => {
            sock.end(hash.digest());
            send({ type: 'done', what: 'resource', count: 1, bytes, maxRssKiB: maxRssKiB() });
          });
        }
      });
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('message', (m: ParentMsg) => m.type === 'quit' && process.exit(0));
  send({ type: 'ready', sessionPort: 0, rawPort: (server.address() as AddressInfo).port });
}

// ---- the parent: sender / measurer ---------------------------------------------------------

function waitFor(c: ChildProcess, what: string): Promise<Extract<ChildMsg, { type: 'done' }>> {
  return new Promise((resolve, reject) => {
    const on = (m: ChildMsg): void => {
      if (m.type === 'done' && m.what.startsWith(what)) {
        c.off('message', on);
        if (m.what !== what) reject(new Error(m.what));
        else resolve(m);
      }
    };
    c.on('message', on);
  });
}

function rawConnect(port: number): Promise<TLSSocket> {
  const key = Buffer.from(KEY_HEX, 'hex');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined, pskCallback: () => ({ psk: key, identity: 'peerlink' }) }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

function write(s: TLSSocket | Duplex, b: Buffer): Promise<void> | undefined {
  if (s.write(b)) return undefined;
  return new Promise((r) => s.once('drain', () => r()));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Libp2pResult {
  messagesPerSec: number;
  bulkMiBps: number;
  rttP50Us: number;
  connectMs: number;
}

/**
 * Runs bench/libp2p/peer.mjs, in its own process group so that a run that times out is
 * ended with every process it forked. A string says why there is no result.
 */
function runLibp2p(args: string[], timeoutMs: number): Promise<Libp2pResult | string> {
  const dir = fileURLToPath(new URL('../../../bench/libp2p/', import.meta.url));
  if (!existsSync(`${dir}node_modules`)) return Promise.resolve('js-libp2p: not installed, run npm run bench:libp2p:install');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${dir}peer.mjs`, ...args], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
      resolve(`js-libp2p: no result within ${timeoutMs / 1000} s (try smaller --libp2p-messages / --libp2p-bulk-mib)`);
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      resolve(line ? (JSON.parse(line) as Libp2pResult) : `js-libp2p: failed (exit ${String(code)})`);
    });
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

const median = (xs: number[]): number => percentile(xs, 50);

interface Row {
  name: string;
  unit: string;
  session: number[];
  raw: number[];
  /** 'higher' when more is better (rates), 'lower' for times and memory. */
  better: 'higher' | 'lower';
  target: string;
  /** Ratio session / raw the target needs (≥ for higher, ≤ for lower), if any. */
  goal?: number;
  libp2p?: number;
  libp2pGoal?: number;
  /** Extra target text checked by hand below the table. */
  note?: string;
}

interface Ctx {
  c: ChildProcess;
  a: PeerSession;
  peer: PeerID;
  raw: TLSSocket;
  rawPort: number;
  tell: (m: ParentMsg) => void;
}

/** Tells the receiver to expect `n` messages, runs `send`, and returns messages per second to the receiver's count. */
async function timedMessages(x: Ctx, what: 'messages' | 'raw-messages', n: number, send: (msg: Buffer) => Promise<void>): Promise<number> {
  const msg = Buffer.alloc(MSG_SIZE, 0x61);
  x.tell({ type: 'expect', what, count: n });
  await sleep(100);
  const done = waitFor(x.c, what);
  const t0 = performance.now();
  await send(msg);
  await done;
  return n / ((performance.now() - t0) / 1000);
}

function messagesSession(x: Ctx, n: number): Promise<number> {
  return timedMessages(x, 'messages', n, async (msg) => {
    // Pipelined as an app would: keep sending, wait on a send now and then so backpressure applies.
    for (let i = 0; i < n; i++) {
      const p = x.a.send(msg, { to: x.peer });
      if ((i & 1023) === 1023) await p;
    }
  });
}

function messagesRaw(x: Ctx, n: number): Promise<number> {
  return timedMessages(x, 'raw-messages', n, async (msg) => {
    // Frames merged into 64 KiB writes, waiting for drain when the socket says so.
    let batch = Buffer.allocUnsafe(CHUNK);
    let off = 0;
    for (let i = 0; i < n; i++) {
      batch.writeUInt32BE(MSG_SIZE, off);
      msg.copy(batch, off + 4);
      off += 4 + MSG_SIZE;
      if (off + 4 + MSG_SIZE > batch.length || i === n - 1) {
        const w = write(x.raw, batch.subarray(0, off));
        batch = Buffer.allocUnsafe(CHUNK);
        off = 0;
        if (w) await w;
      }
    }
  });
}

async function rttSession(x: Ctx, n: number): Promise<number> {
  const msg = Buffer.alloc(MSG_SIZE, 0x61);
  x.tell({ type: 'echo', on: true });
  await sleep(100);
  const times: number[] = [];
  let resolveEcho: (() => void) | undefined;
  const onMsg = (): void => resolveEcho?.();
  x.a.on('message', onMsg);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const p = new Promise<void>((r) => (resolveEcho = r));
    await x.a.send(msg, { to: x.peer });
    await p;
    times.push(performance.now() - t0);
  }
  x.a.off('message', onMsg);
  x.tell({ type: 'echo', on: false });
  return percentile(times, 50) * 1000;
}

async function rttRaw(x: Ctx, n: number): Promise<number> {
  x.tell({ type: 'echo', on: true });
  await sleep(100);
  const frame = Buffer.concat([Buffer.of(0, 0, 0, MSG_SIZE), Buffer.alloc(MSG_SIZE, 0x61)]);
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const p = new Promise<void>((r) => x.raw.once('data', () => r()));
    x.raw.write(frame);
    await p;
    times.push(performance.now() - t0);
  }
  x.tell({ type: 'echo', on: false });
  return percentile(times, 50) * 1000;
}

async function bulkSession(x: Ctx, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 0x42);
  const done = waitFor(x.c, 'stream');
  const stream = await x.a.openStream('bulk', x.peer);
  stream.resume();
  const t0 = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    const w = write(stream, chunk);
    if (w) await w;
  }
  const closed = new Promise<void>((resolve, reject) => {
    stream.once('close', resolve);
    stream.once('error', reject);
  });
  stream.end();
  const got = await done;
  const rate = bytes / ((performance.now() - t0) / 1000) / 1e6;
  if (got.bytes !== bytes) throw new Error(`bulk: receiver got ${got.bytes} of ${bytes} bytes`);
  // Both sides ended: the stream closes by itself (and must, before the session closes).
  await closed;
  return rate;
}

async function bulkRaw(x: Ctx, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(CHUNK, 0x42);
  const sock = await rawConnect(x.rawPort);
  const done = waitFor(x.c, 'raw-bulk');
  const first = Buffer.alloc(CHUNK, 0xff);
  const t1 = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    const w = write(sock, sent === 0 ? first : chunk);
    if (w) await w;
  }
  sock.end();
  const got = await done;
  if (got.bytes !== bytes) throw new Error(`raw bulk: receiver got ${got.bytes} of ${bytes} bytes`);
  return bytes / ((performance.now() - t1) / 1000) / 1e6;
}

async function connectSession(port: number, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = new PeerSession(sessionOptions(`bench-c${i}`));
    await s.start();
    const t0 = performance.now();
    await s.connect(Endpoint.hostPort('127.0.0.1', port));
    times.push(performance.now() - t0);
    await s.close();
  }
  return percentile(times, 50);
}

async function connectRaw(x: Ctx, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const s = await rawConnect(x.rawPort);
    times.push(performance.now() - t0);
    s.destroy();
  }
  return percentile(times, 50);
}

/** The receiver process's CPU time so far (user + system), µs. */
function childCpu(x: Ctx): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: ChildMsg): void => {
      if (m.type !== 'cpu') return;
      x.c.off('message', on);
      resolve(m.micros);
    };
    x.c.on('message', on);
    x.tell({ type: 'cpu' });
  });
}

/** Where withCpu() records one side's CPU time: both processes together, and each alone. */
interface CpuSinks {
  both: number[];
  sender: number[];
  receiver: number[];
}

/**
 * Runs one measurement and records the CPU time the two processes spent on it (sender = this
 * process, receiver = the child), together and each alone, as ns per `units`. CPU time is much
 * less disturbed by other jobs on a shared machine than wall-clock rates, and the split shows
 * which side a difference comes from.
 */
async function withCpu(x: Ctx, run: () => Promise<number>, units: number, per: number, sink: CpuSinks): Promise<number> {
  const c0 = await childCpu(x);
  const p0 = process.cpuUsage();
  const v = await run();
  const p = process.cpuUsage(p0);
  const c1 = await childCpu(x);
  const scale = (micros: number): number => (Number.isNaN(v) ? NaN : (micros * 1000 * per) / units);
  sink.both.push(scale(p.user + p.system + c1 - c0));
  sink.sender.push(scale(p.user + p.system));
  sink.receiver.push(scale(c1 - c0));
  return v;
}

function forkChild(args: string[]): { c: ChildProcess; ready: Promise<Extract<ChildMsg, { type: 'ready' }>> } {
  const c = fork(fileURLToPath(import.meta.url), args, { env: { ...process.env, BENCH_PSK: KEY_HEX } });
  const ready = new Promise<Extract<ChildMsg, { type: 'ready' }>>((resolve, reject) => {
    c.once('exit', (code) => reject(new Error(`bench child ${args.join(' ')} exited (${String(code)}) before it was ready`)));
    c.once('message', (m: ChildMsg) => m.type === 'ready' && resolve(m));
  });
  return { c, ready };
}

/** One resource transfer of `file` to a fresh receiver process; returns [seconds, receiver's peak RSS MiB]. */
async function resourceOnce(kind: 'session' | 'raw', file: string, size: number, work: string): Promise<[number, number]> {
  const dir = await mkdtemp(join(work, `recv-${kind}-`));
  const { c, ready } = forkChild(['resource-child', kind, dir]);
  try {
    const r = await ready;
    const done = waitFor(c, 'resource');
    const t0 = performance.now();
    if (kind === 'session') {
      const a = new PeerSession(sessionOptions('bench-rs'));
      await a.start();
      try {
        const peer = await a.connect(Endpoint.hostPort('127.0.0.1', r.sessionPort));
        await a.sendResource(file, 'bench.bin', peer).done;
      } finally {
        await a.close();
      }
    } else {
      const sock = await rawConnect(r.rawPort);
      const head = Buffer.alloc(8);
      head.writeBigUInt64BE(BigInt(size), 0);
      sock.write(head);
      // The sender hashes too, as sendResource does, and checks the receiver's digest.
      const hash = createHash('sha256');
      const digest = new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        sock.on('data', (d: Buffer) => parts.push(d));
        sock.on('end', () => resolve(Buffer.concat(parts)));
      });
      const src = createReadStream(file, { highWaterMark: CHUNK });
      src.on('data', (c) => hash.update(c));
      await pipeline(src, sock, { end: false });
      const theirs = await digest;
      if (!theirs.equals(hash.digest())) throw new Error('raw resource: digest mismatch');
      sock.destroy();
    }
    const got = await done;
    if (got.bytes !== size) throw new Error(`${kind} resource: receiver saved ${got.bytes} of ${size} bytes`);
    return [(performance.now() - t0) / 1000, (got.maxRssKiB ?? 0) / 1024];
  } finally {
    c.send({ type: 'quit' });
    await new Promise((r) => c.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

async function resourceScenario(gibs: number[], rounds: number): Promise<Row[]> {
  const work = await mkdtemp(join(tmpdir(), 'peerlink-bench-'));
  const rows: Row[] = [];
  try {
    for (const gib of gibs) {
      const size = Math.round(gib * 1024 ** 3);
      const file = join(work, `src-${gib}.bin`);
      // Sparse: created instantly and takes no disk; the bytes still go through every layer.
      const fh = await open(file, 'w');
      await fh.truncate(size);
      await fh.close();
      const time: Row = { name: `resource ${gib} GiB throughput`, unit: 'MB/s', session: [], raw: [], better: 'higher', target: '' };
      const mem: Row = { name: `resource ${gib} GiB receiver peak RSS`, unit: 'MiB', session: [], raw: [], better: 'lower', target: 'raw+30' };
      for (let r = 0; r < rounds; r++) {
        for (const kind of r % 2 === 0 ? (['session', 'raw'] as const) : (['raw', 'session'] as const)) {
          process.stderr.write(`bench: resource ${gib} GiB ${kind} (round ${r + 1}/${rounds})\n`);
          const [secs, rss] = await resourceOnce(kind, file, size, work);
          (kind === 'session' ? time.session : time.raw).push(size / secs / 1e6);
          (kind === 'session' ? mem.session : mem.raw).push(rss);
        }
      }
      await rm(file, { force: true });
      rows.push(time, mem);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

/**
 * Resuming (resume.ts): the "raw" column is what starting over would cost — no prefix check
 * (0 ms of it) and every byte the receiver held sent again.
 */
async function resumeScenario(mib: number, rounds: number): Promise<Row[]> {
  const wait: Row = { name: `resume ${mib} MiB: reconnect → first resumed byte`, unit: 'ms', session: [], raw: [], better: 'lower', target: '', note: 'raw: starting over skips the prefix check (0 ms) but re-sends what the receiver held' };
  // MB, not MiB: the MiB rows are the resource memory rows checked for flatness below.
  const resent: Row = { name: `resume ${mib} MiB: bytes sent again`, unit: 'MB', session: [], raw: [], better: 'lower', target: '' };
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`bench: resume ${mib} MiB (round ${r + 1}/${rounds})\n`);
    const s = await resumeOnce(mib * 1024 * 1024, KEY_HEX);
    wait.session.push(s.reconnectToFirstByteMs);
    wait.raw.push(0);
    resent.session.push(s.resentBytes / 1e6);
    resent.raw.push(s.heldBytes / 1e6);
  }
  return [wait, resent];
}

async function parent(): Promise<void> {
  const N = arg('messages', 1_000_000);
  const BULK = arg('bulk-mib', 512) * 1024 * 1024;
  const RTTS = arg('rtt', 2000);
  const CONNECTS = arg('connects', 20);
  const ROUNDS = Math.max(1, arg('rounds', 3));
  const scenarios = new Set(argList('scenarios', 'messages,rtt,bulk,connect'));
  const resourceGib = argList('resource-gib', '').map(Number);
  if (resourceGib.length > 0) scenarios.add('resource');
  const { c, ready: readyP } = forkChild(['child']);
  const ready = await readyP;
  const tell = (m: ParentMsg): void => {
    c.send(m);
  };
  const a = new PeerSession(sessionOptions('bench-a'));
  await a.start();
  const peer: PeerID = await a.connect(Endpoint.hostPort('127.0.0.1', ready.sessionPort));
  const raw = await rawConnect(ready.rawPort);
  const x: Ctx = { c, a, peer, raw, rawPort: ready.rawPort, tell };
  const rows: Row[] = [];
  // For profiling one side alone: --sides session (or raw) skips the other.
  const sides = argList('sides', 'session,raw');
  const skip = (): Promise<number> => Promise.resolve(NaN);
  const add = (row: Row, s: () => Promise<number>, r: () => Promise<number>) => ({ row, s: sides.includes('session') ? s : skip, r: sides.includes('raw') ? r : skip });
  // CPU time of both processes per unit of work, next to the rate it was measured with.
  const cpuRows = new Map<Row, Row[]>();
  const withCpuRow = (p: { row: Row; s: () => Promise<number>; r: () => Promise<number> }, name: string, unit: string, units: number, per: number) => {
    const cpuRow = (label: string): Row => ({ name: label, unit, session: [], raw: [], better: 'lower', target: '' });
    const [both, sender, receiver] = [cpuRow(`  ${name} (both processes)`), cpuRow('    sender'), cpuRow('    receiver')];
    cpuRows.set(p.row, [both, sender, receiver]);
    const sinks = (side: 'session' | 'raw'): CpuSinks => ({ both: both[side], sender: sender[side], receiver: receiver[side] });
    return { row: p.row, s: () => withCpu(x, p.s, units, per, sinks('session')), r: () => withCpu(x, p.r, units, per, sinks('raw')) };
  };
  const plan = [
    scenarios.has('messages') &&
      withCpuRow(
        add({ name: `${MSG_SIZE}-byte messages (pipelined)`, unit: 'msg/s', session: [], raw: [], better: 'higher', target: '≥ 0.8', goal: 0.8, libp2pGoal: 20 }, () => messagesSession(x, N), () => messagesRaw(x, N)),
        'CPU per message',
        'ns',
        N,
        1,
      ),
    scenarios.has('rtt') && add({ name: `RTT p50 (${MSG_SIZE}-byte ping-pong)`, unit: 'µs', session: [], raw: [], better: 'lower', target: '' }, () => rttSession(x, RTTS), () => rttRaw(x, RTTS)),
    scenarios.has('bulk') &&
      withCpuRow(
        add({ name: `bulk stream (${BULK >> 20} MiB, 64 KiB writes)`, unit: 'MB/s', session: [], raw: [], better: 'higher', target: '≥ 0.9', goal: 0.9 }, () => bulkSession(x, BULK), () => bulkRaw(x, BULK)),
        'CPU per MiB',
        'µs',
        BULK,
        1024 * 1024 / 1000,
      ),
    scenarios.has('connect') && add({ name: 'time to connected p50', unit: 'ms', session: [], raw: [], better: 'lower', target: '' }, () => connectSession(ready.sessionPort, CONNECTS), () => connectRaw(x, CONNECTS)),
  ].filter((p) => p !== false);
  // Warm-up, not recorded: a side that runs first in round 1 would otherwise pay for JIT
  // compilation (the first RTT round was 2.5x slower than the next ones).
  if (!process.argv.includes('--no-warmup')) {
    process.stderr.write('bench: warm-up\n');
    const n = Math.ceil(N / 10);
    const warm: Array<[string, () => Promise<number>]> = [
      ['messages', () => messagesSession(x, n)],
      ['messages', () => messagesRaw(x, n)],
      ['rtt', () => rttSession(x, 300)],
      ['rtt', () => rttRaw(x, 300)],
      ['bulk', () => bulkSession(x, 32 << 20)],
      ['bulk', () => bulkRaw(x, 32 << 20)],
    ];
    for (const [name, run] of warm) if (scenarios.has(name)) await run();
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of plan) {
      process.stderr.write(`bench: ${p.row.name} (round ${round + 1}/${ROUNDS})\n`);
      // Alternate which side goes first: a background job that starts mid-run then hurts both.
      if (round % 2 === 0) {
        p.row.session.push(await p.s());
        p.row.raw.push(await p.r());
      } else {
        p.row.raw.push(await p.r());
        p.row.session.push(await p.s());
      }
    }
  }
  for (const p of plan) {
    rows.push(p.row);
    rows.push(...(cpuRows.get(p.row) ?? []));
  }
  raw.destroy();
  await a.close();
  tell({ type: 'quit' });
  await new Promise((r) => c.once('exit', r));
  const resourceRounds = Math.max(1, arg('resource-rounds', Math.min(ROUNDS, 2)));
  if (scenarios.has('resource')) rows.push(...(await resourceScenario(resourceGib.length ? resourceGib : [1], resourceRounds)));
  if (scenarios.has('resume')) rows.push(...(await resumeScenario(arg('resume-mib', 512), resourceRounds)));

  // js-libp2p last, alone, so it does not compete with the runs above.
  let lpNote = '';
  const lpMessages = arg('libp2p-messages', Math.min(N, 50_000));
  const lpBulk = arg('libp2p-bulk-mib', Math.min(BULK >> 20, 128));
  if (!process.argv.includes('--no-libp2p') && plan.length > 0) {
    process.stderr.write('bench: js-libp2p\n');
    const lp = await runLibp2p(['--messages', String(lpMessages), '--bulk-mib', String(lpBulk), '--rtt', String(RTTS), '--connects', String(Math.min(CONNECTS, 10))], arg('libp2p-timeout', 180) * 1000);
    if (typeof lp === 'string') lpNote = lp;
    else {
      for (const row of rows) {
        if (row.unit === 'msg/s') row.libp2p = lp.messagesPerSec;
        else if (row.name.startsWith('RTT')) row.libp2p = lp.rttP50Us;
        else if (row.name.startsWith('bulk')) row.libp2p = (lp.bulkMiBps * 1048576) / 1e6;
        else if (row.name.startsWith('time to connected')) row.libp2p = lp.connectMs;
      }
      lpNote = `js-libp2p: ${lpMessages} messages, ${lpBulk} MiB bulk, one run (tcp + noise + yamux)`;
    }
  }
  printTable(rows, scenarios.has('resource') ? `${ROUNDS} round(s), resources ${resourceRounds}` : `${ROUNDS} round(s)`, lpNote);
}

function printTable(rows: Row[], rounds: string, lpNote: string): void {
  const fmt = (n: number): string => (n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 3));
  const cols: Array<[string, number]> = [['measurement', -40], ['unit', -6], ['session', 12], ['raw tls', 12], ['ratio', 6], ['target', 7], ['ok', 3], ['js-libp2p', 10], ['ratio', 7], ['target', 7], ['ok', 3]];
  const line = (cells: string[]): string => cells.map((v, i) => ((cols[i] as [string, number])[1] < 0 ? v.padEnd(-(cols[i] as [string, number])[1]) : v.padStart((cols[i] as [string, number])[1]))).join(' ');
  console.log(`peerlink session benchmark — Node ${process.version}, TLS-PSK, 127.0.0.1, peers in separate processes; medians of ${rounds}`);
  console.log(line(cols.map(([n]) => n)));
  const misses: string[] = [];
  for (const row of rows) {
    const s = median(row.session);
    const r = median(row.raw);
    const ratio = s / r;
    let ok = '';
    if (row.goal !== undefined) {
      ok = row.better === 'higher' ? (ratio >= row.goal ? 'yes' : 'NO') : ratio <= row.goal ? 'yes' : 'NO';
    } else if (row.target === 'raw+30') ok = s <= r + 30 ? 'yes' : 'NO';
    if (ok === 'NO') misses.push(row.name);
    const l = row.libp2p;
    const lRatio = l === undefined ? undefined : s / l;
    let lOk = '';
    if (lRatio !== undefined && row.libp2pGoal !== undefined) lOk = lRatio >= row.libp2pGoal ? 'yes' : 'NO';
    if (lOk === 'NO') misses.push(`${row.name} vs js-libp2p`);
    console.log(line([row.name, row.unit, fmt(s), fmt(r), Number.isFinite(ratio) ? ratio.toFixed(2) : '—', row.target, ok, l === undefined ? '' : fmt(l), lRatio === undefined ? '' : lRatio.toFixed(1), row.libp2pGoal === undefined ? '' : `≥ ${row.libp2pGoal}`, lOk]));
  }
  // Resource memory flatness: the largest file's peak within 10 % of the smallest's.
  const mem = rows.filter((r) => r.unit === 'MiB');
  if (mem.length >= 2) {
    const first = median((mem[0] as Row).session);
    const last = median((mem[mem.length - 1] as Row).session);
    const flat = Math.abs(last - first) <= 0.1 * first;
    console.log(`resource peak RSS, session: ${fmt(first)} MiB (${(mem[0] as Row).name.split(' ')[1]} GiB) vs ${fmt(last)} MiB (${(mem[mem.length - 1] as Row).name.split(' ')[1]} GiB): ${flat ? 'flat (within 10 %)' : 'NOT flat (target: within 10 %)'}`);
    if (!flat) misses.push('resource memory flat in file size');
  }
  if (lpNote) console.log(lpNote);
  console.log('ratio = session / other. RTT, time to connected and RSS: lower is better. Targets (issue 4): messages ≥ 0.8× raw TLS and ≥ 20× js-libp2p, bulk ≥ 0.9× raw TLS, resource peak RSS ≤ raw TLS + 30 MiB and flat in file size.');
  console.log(misses.length ? `missed: ${misses.join('; ')}` : 'every target in this table met');
  for (const row of rows) process.stderr.write(`bench: samples ${row.name}: session [${row.session.map(fmt).join(', ')}] raw [${row.raw.map(fmt).join(', ')}]\n`);
}

if (process.argv[2] === 'child') void child();
else if (process.argv[2] === 'resource-child') void resourceChild(process.argv[3] as string, process.argv[4] as string);
else
  parent().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
