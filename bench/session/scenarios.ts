/**
 * The session benchmark's paired scenarios, each measured on the session and on raw TLS-PSK
 * against the receiver process: pipelined messages, RTT, bulk stream, time to connected, and
 * the CPU time both processes spend on a measurement.
 */
import type { ChildProcess } from 'node:child_process';
import type { TLSSocket } from 'node:tls';
import { PeerSession } from '../../src/session/index.js';
import type { PeerID } from '../../src/session/peer-id.js';
import { Endpoint } from '../../src/net/index.js';
import { CHUNK, MSG_SIZE, percentile, rawConnect, sessionOptions, sleep, waitFor, write, type ChildMsg, type ParentMsg } from './common.js';

export interface Ctx {
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

export function messagesSession(x: Ctx, n: number): Promise<number> {
  return timedMessages(x, 'messages', n, async (msg) => {
    // Pipelined as an app would: keep sending, wait on a send now and then so backpressure applies.
    for (let i = 0; i < n; i++) {
      const p = x.a.send(msg, { to: x.peer });
      if ((i & 1023) === 1023) await p;
    }
  });
}

export function messagesRaw(x: Ctx, n: number): Promise<number> {
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

export async function rttSession(x: Ctx, n: number): Promise<number> {
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

export async function rttRaw(x: Ctx, n: number): Promise<number> {
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

export async function bulkSession(x: Ctx, bytes: number): Promise<number> {
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

export async function bulkRaw(x: Ctx, bytes: number): Promise<number> {
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

export async function connectSession(port: number, n: number): Promise<number> {
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

export async function connectRaw(x: Ctx, n: number): Promise<number> {
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
export interface CpuSinks {
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
export async function withCpu(x: Ctx, run: () => Promise<number>, units: number, per: number, sink: CpuSinks): Promise<number> {
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
