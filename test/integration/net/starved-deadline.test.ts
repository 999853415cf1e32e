/**
 * Handshake deadlines on a starved host (src/net/handshake-deadline.ts): time this process
 * stood still does not count against the peer, and an answer that arrived meanwhile is read
 * before the verdict. "Standing still" is made here by a synchronous busy loop inside an I/O
 * callback, as a host running 100 peers on two cores does for seconds at a time: the timers
 * phase then runs before the poll phase that would read the socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Connection, Endpoint, Listener, Parameters } from '../../../src/net/index.js';
import { delay, echoListener, nextState, PSK } from './helpers.js';

/** This process does nothing else for `ms` (a starved event loop). */
function standStill(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

interface ProxyHooks {
  /** The client's first bytes were forwarded to the server. */
  onClientFirst?: () => void;
  /** The server's first bytes were written to the client. */
  onServerFirst?: () => void;
  /** The server's bytes are passed on this long after they came. */
  holdMs?: number;
}

/** A TCP proxy to `port` on loopback with hooks on the first bytes each way. */
async function proxyTo(port: number, hooks: ProxyHooks): Promise<Server> {
  const proxy = createServer((client: Socket) => {
    const server = createConnection({ host: '127.0.0.1', port });
    client.on('error', () => undefined);
    server.on('error', () => undefined);
    let clientFirst = true;
    client.on('data', (b: Buffer) => {
      server.write(b);
      if (clientFirst) {
        clientFirst = false;
        hooks.onClientFirst?.();
      }
    });
    let serverFirst = true;
    server.on('data', (b: Buffer) => {
      const pass = (): void => {
        client.write(b);
        if (serverFirst) {
          serverFirst = false;
          hooks.onServerFirst?.();
        }
      };
      if (hooks.holdMs) setTimeout(pass, hooks.holdMs).unref();
      else pass();
    });
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return proxy;
}

const portOf = (s: Server): number => (s.address() as { port: number }).port;
const params = (timeout: number): Parameters => Parameters.tls({ psk: { key: PSK } }, { framer: true, tcp: { connectionTimeout: timeout }, retry: { automatic: false } });

test('a dial whose answer came while this process stood still past the deadline is kept (the answer is read first)', async (t) => {
  const l = await echoListener(Parameters.tls({ psk: { key: PSK } }, { framer: true }));
  const timeout = 400;
  // the server's first flight is in our socket, unread, when the deadline passes
  const proxy = await proxyTo(l.port, { onServerFirst: () => standStill(3 * timeout) });
  const c = new Connection(Endpoint.hostPort('127.0.0.1', portOf(proxy)), params(timeout)).start();
  t.after(async () => {
    c.forceCancel();
    proxy.close();
    await l.cancel();
  });
  assert.equal(await nextState(c, 'waiting', 'failed', 'ready'), 'ready', c.error?.message);
  await c.send(Buffer.from('hi'));
  assert.equal((await c.receiveMessage())?.toString(), 'hi');
});

test('time this process stood still is granted again: an answer that comes after a late deadline is waited for', async (t) => {
  const l = await echoListener(Parameters.tls({ psk: { key: PSK } }, { framer: true }));
  const timeout = 400;
  // the process stands still 1200 ms from the ClientHello (the deadline, due at 400 ms, fires
  // ~800 ms late and grants 400 ms more); the server's answer reaches us ~100 ms after the stall
  const proxy = await proxyTo(l.port, { onClientFirst: () => standStill(1200), holdMs: 100 });
  const t0 = Date.now();
  const c = new Connection(Endpoint.hostPort('127.0.0.1', portOf(proxy)), params(timeout)).start();
  t.after(async () => {
    c.forceCancel();
    proxy.close();
    await l.cancel();
  });
  assert.equal(await nextState(c, 'waiting', 'failed', 'ready'), 'ready', `${c.error?.message} after ${Date.now() - t0} ms`);
});

test('a server that never answers still fails: our own lateness is granted once, up to connectionTimeout', async (t) => {
  const timeout = 400;
  const socks: Socket[] = [];
  // accepts, stands this process still for 1200 ms, and never sends a byte
  const silent = createServer((s) => {
    socks.push(s);
    s.on('error', () => undefined);
    standStill(1200);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of socks) s.destroy();
    silent.close();
  });
  const t0 = Date.now();
  const c = new Connection(Endpoint.hostPort('127.0.0.1', portOf(silent)), params(timeout)).start();
  assert.equal(await nextState(c, 'waiting', 'failed', 'ready'), 'waiting');
  const took = Date.now() - t0;
  assert.equal(c.error?.code, 'ERR_CONNECTION_TIMEOUT');
  assert.match(c.error?.message ?? '', /TCP connected, nothing from the server/);
  // stood still until ~1200 ms, then at most `timeout` more (generous margin for a loaded machine)
  assert.ok(took >= 1200 && took < 1200 + timeout + 1500, `timed out after ${took} ms`);
  c.cancel();
});

test('a listener does not take a client whose ClientHello came while it stood still for a silent one', async (t) => {
  const timeout = 400;
  const l = new Listener(Parameters.tls({ psk: { key: PSK } }, { framer: true, tcp: { connectionTimeout: timeout } }), { host: '127.0.0.1' });
  const rejected: Array<{ code: string | undefined; message: string }> = [];
  l.on('rejected', (err: { code?: string; message: string }) => rejected.push({ code: err.code, message: err.message }));
  await l.start();
  const t0 = Date.now();
  const started = createConnection({ host: '127.0.0.1', port: l.port });
  started.on('error', () => undefined);
  t.after(async () => {
    started.destroy();
    await l.cancel();
  });
  await new Promise<void>((r) => started.once('connect', () => r()));
  await delay(50); // the listener has accepted it: its deadline runs
  // the first bytes of a ClientHello reach the listener's socket, and the process stands still
  // past the deadline — in the check phase, so the next iteration's timers run before its poll
  await new Promise<void>((r) => setImmediate(r));
  started.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]));
  standStill(3 * timeout);
  const closedAt = await new Promise<number>((r) => started.once('close', () => r(Date.now() - t0)));
  await delay(100);
  // kept as a started handshake: closed by the TLS handshake timeout (2 × connectionTimeout), not as silent
  assert.ok(closedAt >= 2 * timeout - 50, `closed after ${closedAt} ms`);
  assert.equal(rejected.filter((r) => /no TLS ClientHello/.test(r.message)).length, 0, JSON.stringify(rejected));
  assert.equal(rejected.length, 1, JSON.stringify(rejected));
});

const PEER = fileURLToPath(new URL('./fixtures/net-peer.js', import.meta.url));

test('dials that timed out while the listener stood still (SIGSTOP) are reset: it makes no handshake for them, and the next dial connects', async (t) => {
  const child = spawn(process.execPath, [PEER, 'listen-psk', '0', '127.0.0.1', PSK], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Array<{ event: string; port?: number; message?: string }> = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as (typeof lines)[number]));
  t.after(() => {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  });
  const until = async (pred: () => boolean, ms: number, what: string): Promise<void> => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) assert.fail(`${what}: ${JSON.stringify(lines)}`);
      await delay(20);
    }
  };
  await until(() => lines.some((l) => l.event === 'listening'), 15_000, 'listening');
  const port = lines.find((l) => l.event === 'listening')?.port as number;
  // a starved listener: the kernel completes the TCP handshakes into its accept queue, the process does nothing
  child.kill('SIGSTOP');
  const N = 5;
  const dials = Array.from({ length: N }, () => new Connection(Endpoint.hostPort('127.0.0.1', port), params(300)).start());
  for (const c of dials) {
    assert.equal(await nextState(c, 'waiting', 'failed', 'ready'), 'waiting');
    assert.match(c.error?.message ?? '', /TCP connected, nothing from the server/);
    c.cancel();
  }
  child.kill('SIGCONT');
  const c = new Connection(Endpoint.hostPort('127.0.0.1', port), params(10_000)).start();
  t.after(() => c.forceCancel());
  assert.equal(await nextState(c, 'waiting', 'failed', 'ready'), 'ready', c.error?.message);
  await until(() => lines.filter((l) => l.event === 'rejected').length >= N, 10_000, 'rejected');
  const rejected = lines.filter((l) => l.event === 'rejected');
  assert.equal(rejected.filter((l) => /reset by the client before it was accepted/.test(l.message ?? '')).length, N, JSON.stringify(rejected));
  await until(() => lines.some((l) => l.event === 'connection'), 10_000, 'connection');
  assert.equal(lines.filter((l) => l.event === 'connection').length, 1);
});
