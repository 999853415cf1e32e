#!/usr/bin/env node
// js-libp2p baseline (tcp + noise + yamux) for bench/session: the same traffic as the
// session benchmark, between two processes on 127.0.0.1. Prints one JSON line:
//   {"stack":"js-libp2p", "messagesPerSec", "bulkMiBps", "rttP50Us", "rttP99Us", "connectMs"}
// Usage: node bench/libp2p/peer.mjs [--messages N] [--bulk-mib N] [--rtt N] [--connects N] [--verbose]
// Install first: npm run bench:libp2p:install (a separate package, never a peerlink dependency).
import { fork } from 'node:child_process';

// libp2p 3 uses Promise.withResolvers, which Node 20 lacks. Acceptable in a benchmark only.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

const { createLibp2p } = await import('libp2p');
const { tcp } = await import('@libp2p/tcp');
const { noise } = await import('@chainsafe/libp2p-noise');
const { yamux } = await import('@chainsafe/libp2p-yamux');

const PROTO = '/peerlink-bench/1';
const verbose = process.argv.includes('--verbose');
const log = (...a) => { if (verbose) console.error('[libp2p-bench]', ...a); };
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};

function makeNode(listen) {
  return createLibp2p({
    addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // the defaults rate-limit repeated inbound connections from one address
    connectionManager: { inboundConnectionThreshold: 100000, maxIncomingPendingConnections: 1000 },
  });
}

/** Length-prefixed frame reader over a libp2p stream's 'message' events. */
function onFrames(stream, onFrame) {
  let pending = [];
  let have = 0;
  stream.addEventListener('message', (evt) => {
    const data = evt.data.subarray ? evt.data.subarray() : evt.data;
    pending.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    have += data.byteLength;
    while (have >= 4) {
      let head = pending[0].length >= 4 ? pending[0] : Buffer.concat(pending);
      if (head !== pending[0]) pending = [head];
      const len = head.readUInt32BE(0);
      if (have < 4 + len) break;
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      onFrame(all.subarray(4, 4 + len));
      const rest = all.subarray(4 + len);
      pending = rest.length ? [rest] : [];
      have = rest.length;
    }
  });
}

function frame(payload) {
  const b = Buffer.allocUnsafe(4 + payload.length);
  b.writeUInt32BE(payload.length, 0);
  payload.copy(b, 4);
  return b;
}

async function sendAll(stream, buf) {
  if (!stream.send(buf)) await stream.onDrain();
}

// ---- server (child process) ---------------------------------------------------------------
async function server() {
  const node = await makeNode(true);
  await node.handle(PROTO, (stream) => {
    let mode = null;
    let count = 0;
    let target = 0;
    let bytes = 0;
    onFrames(stream, (f) => {
      if (mode === null) {
        const cmd = JSON.parse(f.toString());
        mode = cmd.mode;
        target = cmd.count ?? 0;
        return;
      }
      if (mode === 'echo') { stream.send(frame(f)); return; }
      if (mode === 'messages') {
        if (++count === target) stream.send(frame(Buffer.from('done')));
        else if (count % 50000 === 0) log('server got', count);
        return;
      }
      if (mode === 'bulk') { bytes += f.length; if (bytes >= target) stream.send(frame(Buffer.from('done'))); }
    });
  }, { maxInboundStreams: 1024 });
  process.send({ addr: node.getMultiaddrs()[0].toString() });
  process.on('message', async (m) => { if (m === 'quit') { await node.stop(); process.exit(0); } });
}

// ---- client (parent) ----------------------------------------------------------------------
async function client() {
  const child = fork(new URL(import.meta.url).pathname, ['--server', ...(verbose ? ['--verbose'] : [])], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { addr } = await new Promise((res) => child.once('message', res));
  const { multiaddr } = await import('@multiformats/multiaddr');
  const node = await makeNode(false);
  const ma = multiaddr(addr);

  const result = { stack: 'js-libp2p', transport: 'tcp+noise+yamux' };

  // connection setup: dial + first protocol stream, fresh connection each time
  const connects = arg('connects', 20);
  const times = [];
  for (let i = 0; i < connects; i++) {
    const t0 = performance.now();
    const stream = await node.dialProtocol(ma, PROTO);
    times.push(performance.now() - t0);
    await stream.close();
    await node.hangUp(ma);
  }
  times.sort((a, b) => a - b);
  log('connects done');
  result.connectMs = +times[Math.floor(times.length / 2)].toFixed(2);

  async function session(mode, count, body) {
    const stream = await node.dialProtocol(ma, PROTO);
    const done = new Promise((res) => onFrames(stream, (f) => res(f)));
    await sendAll(stream, frame(Buffer.from(JSON.stringify({ mode, count }))));
    const out = await body(stream, done);
    await stream.close().catch(() => undefined);
    return out;
  }

  // 100-byte messages, pipelined, one send() per message (as an application writes them)
  const n = arg('messages', 100000);
  const payload = Buffer.alloc(100, 7);
  result.messagesPerSec = await session('messages', n, async (stream, done) => {
    const msg = frame(payload);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (!stream.send(msg)) await stream.onDrain();
      if (i % 50000 === 0) log('client sent', i, stream.status, stream.writeStatus);
    }
    log('client sent all');
    await done;
    return Math.round(n / ((performance.now() - t0) / 1000));
  });

  log('messages done', result.messagesPerSec);
  // bulk: 64 KiB chunks
  const mib = arg('bulk-mib', 256);
  const chunk = Buffer.alloc(65536 - 4, 1);
  const total = mib * 1024 * 1024;
  result.bulkMiBps = await session('bulk', Math.floor(total / chunk.length) * chunk.length, async (stream, done) => {
    const f = frame(chunk);
    const t0 = performance.now();
    for (let sent = 0; sent + chunk.length <= total; sent += chunk.length) {
      if (!stream.send(f)) await stream.onDrain();
    }
    await done;
    return +((total / 1048576) / ((performance.now() - t0) / 1000)).toFixed(1);
  });

  log('bulk done', result.bulkMiBps);
  // RTT of 64-byte messages, one at a time
  const rtts = arg('rtt', 2000);
  const rttList = [];
  {
    const stream = await node.dialProtocol(ma, PROTO);
    let wake = null;
    onFrames(stream, () => { const w = wake; wake = null; w?.(); });
    await sendAll(stream, frame(Buffer.from(JSON.stringify({ mode: 'echo' }))));
    const ping = frame(Buffer.alloc(64, 3));
    for (let i = 0; i < rtts; i++) {
      const t0 = process.hrtime.bigint();
      const got = new Promise((res) => { wake = res; });
      stream.send(ping);
      await got;
      rttList.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    await stream.close().catch(() => undefined);
  }
  rttList.sort((a, b) => a - b);
  result.rttP50Us = Math.round(rttList[Math.floor(rttList.length * 0.5)]);
  result.rttP99Us = Math.round(rttList[Math.floor(rttList.length * 0.99)]);

  await node.stop();
  child.send('quit');
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv.includes('--server')) await server();
else await client();
