/**
 * Session benchmark: PeerSession against the same traffic written directly on `node:tls`
 * with the same PSK cipher suites, peers in separate processes, on 127.0.0.1 (no discovery:
 * `connect()` by address, so nothing is multicast).
 *
 *   npm run bench:session [-- --messages 300000 --bulk-mib 512 --rtt 2000 --connects 20 --libp2p-timeout 180]
 *
 * Prints each measurement for both stacks and the ratio session / raw TLS, and — when
 * bench/libp2p is installed (`npm run bench:libp2p:install`) — js-libp2p (tcp + noise + yamux)
 * with the same sizes and the ratio session / js-libp2p.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import tls, { type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { PeerSession } from '../../src/session/index.js';
import type { PeerID } from '../../src/session/peer-id.js';
import { Endpoint } from '../../src/net/index.js';
import { PSK_TLS12_CIPHERS, PSK_TLS13_SUITES } from '../../src/net/psk.js';

const PSK_CIPHERS = `${PSK_TLS13_SUITES}:${PSK_TLS12_CIPHERS}`;
const KEY_HEX = process.env.BENCH_PSK ?? randomBytes(32).toString('hex');

type ChildMsg =
  | { type: 'ready'; sessionPort: number; rawPort: number }
  | { type: 'done'; what: string; count: number; bytes: number };
type ParentMsg = { type: 'expect'; what: 'messages' | 'raw-messages'; count: number } | { type: 'echo'; on: boolean } | { type: 'quit' };

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

// ---- the child: receiver / echo side -------------------------------------------------------

async function child(): Promise<void> {
  const send = (m: ChildMsg): void => {
    process.send?.(m);
  };
  const key = process.env.BENCH_PSK as string;
  const session = new PeerSession({ serviceType: 'bench', displayName: 'bench-b', security: { mode: 'psk', key }, advertise: false, browse: false, maxMessageSize: 1 << 20 });
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
  const keyBuf = Buffer.from(key, 'hex');
  const server = tls.createServer({ ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', pskCallback: () => keyBuf }, (sock: TLSSocket) => {
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
        else if (++rawGot === rawExpect) send({ type: 'done', what: 'raw-messages', count: rawGot, bytes: 0 });
        off += 4 + len;
      }
      if (replies.length) sock.write(Buffer.concat(replies));
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
    else if (m.type === 'quit') {
      void session.close().finally(() => process.exit(0));
    }
  });
  send({ type: 'ready', sessionPort: session.listenPort, rawPort: (server.address() as AddressInfo).port });
}

// ---- the parent: sender / measurer ---------------------------------------------------------

function waitFor(c: ChildProcess, what: string): Promise<Extract<ChildMsg, { type: 'done' }>> {
  return new Promise((resolve) => {
    const on = (m: ChildMsg): void => {
      if (m.type === 'done' && m.what === what) {
        c.off('message', on);
        resolve(m);
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

interface Libp2pResult {
  messagesPerSec: number;
  bulkMiBps: number;
  rttP50Us: number;
  connectMs: number;
}

/**
 * Runs bench/libp2p/peer.mjs with the same sizes, in its own process group so that a run
 * that times out is ended with every process it forked. A string says why there is no result.
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
      resolve(`js-libp2p: no result within ${timeoutMs / 1000} s (try smaller sizes)`);
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

async function parent(): Promise<void> {
  const N = arg('messages', 300_000);
  const BULK = arg('bulk-mib', 512) * 1024 * 1024;
  const RTTS = arg('rtt', 2000);
  const CONNECTS = arg('connects', 20);
  const c = fork(fileURLToPath(import.meta.url), ['child'], { env: { ...process.env, BENCH_PSK: KEY_HEX } });
  const ready = await new Promise<Extract<ChildMsg, { type: 'ready' }>>((r) => c.once('message', (m: ChildMsg) => m.type === 'ready' && r(m)));
  const tell = (m: ParentMsg): void => {
    c.send(m);
  };
  const a = new PeerSession({ serviceType: 'bench', displayName: 'bench-a', security: { mode: 'psk', key: KEY_HEX }, advertise: false, browse: false, maxMessageSize: 1 << 20 });
  await a.start();
  const peer: PeerID = await a.connect(Endpoint.hostPort('127.0.0.1', ready.sessionPort));
  const raw = await rawConnect(ready.rawPort);
  const rows: Array<[string, string, number, number, string, number | undefined]> = [];
  const msg = Buffer.alloc(100, 0x61);

  const phase = (what: string): void => {
    process.stderr.write(`bench: ${what}\n`);
  };
  // 1. 100-byte messages, pipelined.
  phase('messages');
  {
    tell({ type: 'expect', what: 'messages', count: N });
    await new Promise((r) => setTimeout(r, 100));
    const done = waitFor(c, 'messages');
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const p = a.send(msg, { to: peer });
      if ((i & 1023) === 1023) await p;
    }
    await done;
    const sessRate = N / ((performance.now() - t0) / 1000);
    tell({ type: 'expect', what: 'raw-messages', count: N });
    await new Promise((r) => setTimeout(r, 100));
    const rawDone = waitFor(c, 'raw-messages');
    const t1 = performance.now();
    const batch = Buffer.allocUnsafe(64 * 1024);
    let off = 0;
    for (let i = 0; i < N; i++) {
      batch.writeUInt32BE(100, off);
      msg.copy(batch, off + 4);
      off += 104;
      if (off + 104 > batch.length || i === N - 1) {
        const w = write(raw, Buffer.from(batch.subarray(0, off)));
        off = 0;
        if (w) await w;
      }
    }
    await rawDone;
    const rawRate = N / ((performance.now() - t1) / 1000);
    rows.push(['100-byte messages (pipelined)', 'msg/s', sessRate, rawRate, '≥ 0.8', undefined]);
  }

  // 2. RTT, 100-byte ping-pong.
  phase('rtt');
  {
    tell({ type: 'echo', on: true });
    await new Promise((r) => setTimeout(r, 100));
    const sess: number[] = [];
    let resolveEcho: (() => void) | undefined;
    const onMsg = (): void => resolveEcho?.();
    a.on('message', onMsg);
    for (let i = 0; i < RTTS; i++) {
      const t0 = performance.now();
      const p = new Promise<void>((r) => (resolveEcho = r));
      await a.send(msg, { to: peer });
      await p;
      sess.push(performance.now() - t0);
    }
    a.off('message', onMsg);
    const rawR: number[] = [];
    const frame = Buffer.concat([Buffer.of(0, 0, 0, 100), msg]);
    for (let i = 0; i < RTTS; i++) {
      const t0 = performance.now();
      const p = new Promise<void>((r) => raw.once('data', () => r()));
      raw.write(frame);
      await p;
      rawR.push(performance.now() - t0);
    }
    tell({ type: 'echo', on: false });
    rows.push(['RTT p50 (100-byte ping-pong)', 'µs', percentile(sess, 50) * 1000, percentile(rawR, 50) * 1000, '', undefined]);
  }

  // 3. Bulk stream, 64 KiB chunks.
  phase('bulk');
  {
    const chunk = Buffer.alloc(64 * 1024, 0x42);
    const done = waitFor(c, 'stream');
    const stream = await a.openStream('bulk', peer);
    const t0 = performance.now();
    for (let sent = 0; sent < BULK; sent += chunk.length) {
      const w = write(stream, chunk);
      if (w) await w;
    }
    stream.end();
    stream.resume();
    await done;
    const sessBps = BULK / ((performance.now() - t0) / 1000);
    const bulkSock = await rawConnect(ready.rawPort);
    const rawDone = waitFor(c, 'raw-bulk');
    const first = Buffer.alloc(64 * 1024, 0xff);
    const t1 = performance.now();
    for (let sent = 0; sent < BULK; sent += chunk.length) {
      const w = write(bulkSock, sent === 0 ? first : chunk);
      if (w) await w;
    }
    bulkSock.end();
    await rawDone;
    const rawBps = BULK / ((performance.now() - t1) / 1000);
    rows.push([`bulk stream (${BULK >> 20} MiB)`, 'MB/s', sessBps / 1e6, rawBps / 1e6, '≥ 0.9', undefined]);
  }

  // 4. Time to connected: a new session dials (TCP + TLS + HELLO/WELCOME) vs a TLS handshake.
  phase('connect');
  {
    const sess: number[] = [];
    for (let i = 0; i < CONNECTS; i++) {
      const s = new PeerSession({ serviceType: 'bench', displayName: `bench-c${i}`, security: { mode: 'psk', key: KEY_HEX }, advertise: false, browse: false });
      await s.start();
      const t0 = performance.now();
      await s.connect(Endpoint.hostPort('127.0.0.1', ready.sessionPort));
      sess.push(performance.now() - t0);
      await s.close();
    }
    const rawT: number[] = [];
    for (let i = 0; i < CONNECTS; i++) {
      const t0 = performance.now();
      const s = await rawConnect(ready.rawPort);
      rawT.push(performance.now() - t0);
      s.destroy();
    }
    rows.push(['time to connected p50', 'ms', percentile(sess, 50), percentile(rawT, 50), '', undefined]);
  }

  raw.destroy();
  await a.close();
  tell({ type: 'quit' });
  // js-libp2p last, alone, so it does not compete with the runs above.
  phase('js-libp2p');
  const lp = await runLibp2p(['--messages', String(N), '--bulk-mib', String(BULK >> 20), '--rtt', String(RTTS), '--connects', String(CONNECTS)], arg('libp2p-timeout', 180) * 1000);
  if (typeof lp !== 'string') {
    const [m, r, b, c] = rows as [(typeof rows)[0], (typeof rows)[0], (typeof rows)[0], (typeof rows)[0]];
    m[5] = lp.messagesPerSec;
    r[5] = lp.rttP50Us;
    b[5] = (lp.bulkMiBps * 1048576) / 1e6;
    c[5] = lp.connectMs;
  }
  const fmt = (n: number): string => (n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 3));
  console.log(`peerlink session benchmark — Node ${process.version}, TLS-PSK, 127.0.0.1, peers in separate processes`);
  console.log(['measurement'.padEnd(32), 'unit'.padEnd(6), 'session'.padStart(12), 'raw tls'.padStart(12), 'ratio'.padStart(7), 'target'.padStart(7), 'js-libp2p'.padStart(12), 'ratio'.padStart(7)].join(' '));
  for (const [name, unit, s, r, target, l] of rows) {
    const lp2 = l === undefined ? ['', ''] : [fmt(l), (s / l).toFixed(2)];
    console.log([name.padEnd(32), unit.padEnd(6), fmt(s).padStart(12), fmt(r).padStart(12), (s / r).toFixed(2).padStart(7), target.padStart(7), (lp2[0] as string).padStart(12), (lp2[1] as string).padStart(7)].join(' '));
  }
  if (typeof lp === 'string') console.log(lp);
  console.log('ratio = session / other; for RTT and time to connected lower is better (ratio > 1 = session slower). Targets: messages ≥ 0.8× raw TLS and ≥ 20× js-libp2p, bulk ≥ 0.9× raw TLS.');
}

if (process.argv[2] === 'child') void child();
else
  parent().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
