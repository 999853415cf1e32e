/**
 * One side of a transport benchmark, run as its own process:
 *   peer.js receiver <impl> <stack>                  prints {"port"} then serves until killed
 *   peer.js sender <impl> <stack> <scenario> <port> <n>   prints one JSON result
 * impl: raw | peerlink; stack: tcp | tls-psk | ws; scenario: bulk | messages | rtt | setup.
 * Receivers acknowledge the end of a bulk / message run with one 1-byte message; they echo
 * messages of 64 bytes (RTT) and answer nothing else.
 */
import { performance } from 'node:perf_hooks';
import { Connection, Endpoint, Listener, Parameters } from '../../src/net/index.js';
import { PSK_HEX, rawConnect, rawListen, type RawConn, type Stack } from './raw.js';

const [role, impl, stackArg, scenario, portArg, nArg] = process.argv.slice(2);
const stack = stackArg as Stack;
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

function params(): Parameters {
  if (stack === 'tcp') return Parameters.tcp({ framer: true });
  if (stack === 'tls-psk') return Parameters.tls({ psk: { key: PSK_HEX } }, { framer: true });
  return Parameters.ws({ keepalive: false });
}

const RTT_SIZE = 64;
const CHUNK = 64 * 1024;

/** Receiver logic shared by both implementations: count, ack at the announced end, echo RTT probes. */
function receiverLogic(send: (b: Buffer) => unknown): (m: Buffer) => void {
  let expect = -1;
  let got = 0;
  return (m: Buffer) => {
    if (expect < 0) {
      // The first message of a run announces its total (bytes or messages).
      if (m.length === 9 && m[0] === 0xff) {
        expect = Number(m.readBigUInt64BE(1));
        got = 0;
        return;
      }
      if (m.length === RTT_SIZE) send(m);
      return;
    }
    got += m.length === 100 ? 1 : m.length;
    if (got >= expect) {
      expect = -1;
      send(Buffer.alloc(1));
      // for profiling a receiver: end after one run (so --cpu-prof writes its profile)
      if (process.env.BENCH_EXIT_AFTER_RUN) setTimeout(() => process.exit(0), 200);
    }
  };
}

function announce(total: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = 0xff;
  b.writeBigUInt64BE(BigInt(total), 1);
  return b;
}

async function runReceiver(): Promise<void> {
  if (impl === 'raw') {
    const { port } = await rawListen(stack, (c) => {
      c.onMessage = receiverLogic((b) => c.send(b));
    });
    out({ port });
    return;
  }
  const l = new Listener(params(), { host: '127.0.0.1' });
  l.on('connection', (c) => {
    const handle = receiverLogic((b) => c.send(b).catch(() => undefined));
    void (async () => {
      for (;;) {
        const m = await c.receiveMessage();
        if (m === null) break;
        handle(m);
      }
      c.cancel();
    })().catch(() => undefined);
  });
  await l.start();
  out({ port: l.port });
}

/** A uniform view of a client connection for the sender scenarios. */
interface Client {
  send(b: Buffer): Promise<void> | undefined;
  next(): Promise<Buffer>;
  close(): void;
}

async function connect(port: number): Promise<Client> {
  if (impl === 'raw') {
    const c: RawConn = await rawConnect(stack, port);
    let waiter: ((b: Buffer) => void) | undefined;
    const queue: Buffer[] = [];
    c.onMessage = (m) => {
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(m);
      } else queue.push(m);
    };
    return {
      send: (b) => c.send(b),
      next: () => (queue.length ? Promise.resolve(queue.shift() as Buffer) : new Promise((r) => (waiter = r))),
      close: () => c.close(),
    };
  }
  const c = await Connection.connect(Endpoint.hostPort('127.0.0.1', port), params());
  return {
    send: (b) => c.send(b),
    // receiveMessage() resolves null only at the end, which the scenarios never reach.
    next: () => c.receiveMessage() as Promise<Buffer>,
    close: () => c.cancel(),
  };
}

async function runSender(): Promise<void> {
  const port = Number(portArg);
  const n = Number(nArg);
  if (scenario === 'setup') {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const c = await connect(port);
      times.push(performance.now() - t0);
      c.close();
    }
    times.sort((a, b) => a - b);
    out({ setupMs: times[Math.floor(times.length / 2)] });
    return;
  }
  const c = await connect(port);
  if (scenario === 'rtt') {
    const probe = Buffer.alloc(RTT_SIZE, 1);
    const times: number[] = [];
    for (let i = 0; i < n + 100; i++) {
      const t0 = performance.now();
      const p = c.send(probe);
      if (p) await p;
      await c.next();
      if (i >= 100) times.push(performance.now() - t0); // the first 100 warm up
    }
    times.sort((a, b) => a - b);
    out({ p50us: (times[Math.floor(times.length * 0.5)] ?? 0) * 1000, p99us: (times[Math.floor(times.length * 0.99)] ?? 0) * 1000 });
  } else if (scenario === 'bulk') {
    const chunk = Buffer.alloc(CHUNK, 7);
    const total = n;
    await c.send(announce(total));
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += CHUNK) {
      const p = c.send(chunk);
      if (p) await p;
    }
    await c.next();
    const s = (performance.now() - t0) / 1000;
    out({ mbps: total / s / 1e6 });
  } else {
    const msg = Buffer.alloc(100, 3);
    await c.send(announce(n));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const p = c.send(msg);
      if (p) await p;
    }
    await c.next();
    const s = (performance.now() - t0) / 1000;
    out({ msgsPerSec: n / s });
  }
  c.close();
}

if (role === 'receiver') await runReceiver();
else {
  await runSender();
  process.exit(0);
}
