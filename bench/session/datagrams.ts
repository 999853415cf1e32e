/**
 * Datagram benchmark: PeerSession's unreliable sends (secured with TLS-PSK: AES-256-GCM sealed;
 * and with security none) against raw `node:dgram` with the same datagrams, sender and receiver
 * in separate processes on 127.0.0.1 (connect() by address: nothing is multicast).
 *
 *   npm run bench:datagrams [-- --rounds 3 --count 200000 --size 100]
 *
 * Each round, for each of session-psk, session-none and raw dgram: the sender sends `--count`
 * datagrams of `--size` bytes as fast as it can, yielding to the event loop every 256 (as an app
 * in a loop would; the same for all three), and the receiver counts what arrives until nothing
 * has come for 500 ms. Printed: send rate, receive rate (over the receiver's first-to-last
 * datagram), loss (1 − received / sent), and CPU µs per datagram of both processes. UDP has no
 * flow control: a sender faster than its receiver loses datagrams in the kernel's socket buffer,
 * which is the loss shown (the session counts its own drops in `sendDropped`, also printed).
 * The receiving session's datagram budgets are raised for the run (the defaults, 10 000
 * datagrams/s per peer, would cap it: that is their job).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { PeerSession } from '../../src/session/index.js';
import type { PeerID } from '../../src/session/peer-id.js';
import { Endpoint } from '../../src/net/index.js';

type Kind = 'session-psk' | 'session-none' | 'raw';
const KINDS: readonly Kind[] = ['session-psk', 'session-none', 'raw'];
// The child gets the parent's key through the environment.
const KEY_HEX = process.env.BENCH_PSK ?? randomBytes(32).toString('hex');

type ChildMsg = { type: 'ready'; psk: number; none: number; raw: number } | { type: 'armed' } | { type: 'report'; count: number; first: number; last: number; cpu: number };
type ParentMsg = { type: 'arm'; kind: Kind } | { type: 'report'; kind: Kind } | { type: 'quit' };

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function session(name: string, secured: boolean): PeerSession {
  return new PeerSession({
    serviceType: 'dgbench',
    displayName: name,
    advertise: false,
    browse: false,
    interfaces: ['lo'],
    ...(secured ? { security: { mode: 'psk' as const, key: KEY_HEX } } : {}),
    budgets: { datagramsPerSecond: 1e9, datagramBytesPerSecond: 1e12 },
  });
}

function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

// ---- receiver ----------------------------------------------------------------------------

async function child(): Promise<void> {
  const send = (m: ChildMsg): void => void process.send?.(m);
  const counters: Record<Kind, { count: number; first: number; last: number }> = {
    'session-psk': { count: 0, first: 0, last: 0 },
    'session-none': { count: 0, first: 0, last: 0 },
    raw: { count: 0, first: 0, last: 0 },
  };
  const hit = (k: Kind): void => {
    const c = counters[k];
    const now = performance.now();
    if (c.count++ === 0) c.first = now;
    c.last = now;
  };
  const psk = session('rx-psk', true);
  const none = session('rx-none', false);
  psk.on('message', (_d, _p, mode) => mode === 'unreliable' && hit('session-psk'));
  none.on('message', (_d, _p, mode) => mode === 'unreliable' && hit('session-none'));
  await psk.start();
  await none.start();
  const raw = createSocket('udp4');
  raw.on('message', () => hit('raw'));
  await new Promise<void>((r) => raw.bind(0, '127.0.0.1', r));
  let cpu0 = 0;
  process.on('message', (m: ParentMsg) => {
    if (m.type === 'arm') {
      counters[m.kind] = { count: 0, first: 0, last: 0 };
      cpu0 = cpuMicros();
      send({ type: 'armed' });
    } else if (m.type === 'report') {
      const kind = m.kind;
      const wait = async (): Promise<void> => {
        // Until nothing has arrived for 500 ms.
        for (;;) {
          const before = counters[kind].count;
          await sleep(500);
          if (counters[kind].count === before) break;
        }
        const c = counters[kind];
        send({ type: 'report', count: c.count, first: c.first, last: c.last, cpu: cpuMicros() - cpu0 });
      };
      void wait();
    } else if (m.type === 'quit') {
      raw.close();
      void Promise.all([psk.close(), none.close()]).then(() => process.exit(0));
    }
  });
  send({ type: 'ready', psk: psk.listenPort, none: none.listenPort, raw: raw.address().port });
}

// ---- sender ------------------------------------------------------------------------------

function next<T extends ChildMsg['type']>(c: ChildProcess, type: T): Promise<Extract<ChildMsg, { type: T }>> {
  return new Promise((resolve) => {
    const on = (m: ChildMsg): void => {
      if (m.type !== type) return;
      c.off('message', on);
      resolve(m as Extract<ChildMsg, { type: T }>);
    };
    c.on('message', on);
  });
}

interface Sample {
  sendRate: number;
  recvRate: number;
  loss: number;
  cpuPerDatagram: number;
  sendDropped: number;
}

async function parent(): Promise<void> {
  const rounds = arg('rounds', 3);
  const count = arg('count', 200_000);
  const size = arg('size', 100);
  const c = fork(fileURLToPath(import.meta.url), ['child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, BENCH_PSK: KEY_HEX } });
  const ready = await next(c, 'ready');
  const a = { 'session-psk': session('tx-psk', true), 'session-none': session('tx-none', false) };
  await a['session-psk'].start();
  await a['session-none'].start();
  const peers: Record<'session-psk' | 'session-none', PeerID> = {
    'session-psk': await a['session-psk'].connect(Endpoint.hostPort('127.0.0.1', ready.psk)),
    'session-none': await a['session-none'].connect(Endpoint.hostPort('127.0.0.1', ready.none)),
  };
  const raw: Socket = createSocket('udp4');
  await new Promise<void>((r) => raw.bind(0, '127.0.0.1', r));
  await new Promise<void>((r) => raw.connect(ready.raw, '127.0.0.1', r));
  const payload = Buffer.alloc(size, 0x61);
  // Open the flows (the first unreliable send waits for the set-up).
  await a['session-psk'].send(payload, { to: peers['session-psk'], mode: 'unreliable' });
  await a['session-none'].send(payload, { to: peers['session-none'], mode: 'unreliable' });
  await sleep(600);

  const samples: Record<Kind, Sample[]> = { 'session-psk': [], 'session-none': [], raw: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? KINDS : [...KINDS].reverse();
    for (const kind of order) {
      c.send({ type: 'arm', kind } satisfies ParentMsg);
      await next(c, 'armed');
      const dropped0 = kind === 'raw' ? 0 : (a[kind].stats.datagrams.sendDropped ?? 0);
      const cpu0 = cpuMicros();
      const t0 = performance.now();
      if (kind === 'raw') {
        for (let i = 0; i < count; i++) {
          raw.send(payload);
          if ((i & 255) === 255) await tick();
        }
      } else {
        const s = a[kind];
        const to = { to: peers[kind], mode: 'unreliable' as const };
        for (let i = 0; i < count; i++) {
          void s.send(payload, to);
          if ((i & 255) === 255) await tick();
        }
      }
      const sendMs = performance.now() - t0;
      const cpuTx = cpuMicros() - cpu0;
      c.send({ type: 'report', kind } satisfies ParentMsg);
      const rep = await next(c, 'report');
      const recvMs = Math.max(rep.last - rep.first, 1);
      samples[kind].push({
        sendRate: count / (sendMs / 1000),
        recvRate: rep.count / (recvMs / 1000),
        loss: 1 - rep.count / count,
        cpuPerDatagram: (cpuTx + rep.cpu) / count,
        sendDropped: kind === 'raw' ? 0 : (a[kind].stats.datagrams.sendDropped ?? 0) - dropped0,
      });
    }
  }
  c.send({ type: 'quit' } satisfies ParentMsg);
  raw.close();
  await Promise.all([a['session-psk'].close(), a['session-none'].close()]);

  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  console.log(`peerlink datagram benchmark — Node ${process.version}, 127.0.0.1, separate processes; ${count} × ${size}-byte datagrams; medians of ${rounds}`);
  console.log(`${'sender'.padEnd(14)} ${'sent/s'.padStart(11)} ${'received/s'.padStart(11)} ${'loss'.padStart(7)} ${'CPU µs/dgram'.padStart(13)} ${'sendDropped'.padStart(12)}`);
  for (const k of KINDS) {
    const s = samples[k];
    console.log(`${k.padEnd(14)} ${fmt(med(s.map((x) => x.sendRate))).padStart(11)} ${fmt(med(s.map((x) => x.recvRate))).padStart(11)} ${`${(med(s.map((x) => x.loss)) * 100).toFixed(1)} %`.padStart(7)} ${med(s.map((x) => x.cpuPerDatagram)).toFixed(2).padStart(13)} ${fmt(med(s.map((x) => x.sendDropped))).padStart(12)}`);
  }
  console.log('loss: datagrams sent but not received (the receiver falling behind: UDP has no flow control). CPU: both processes, per datagram sent.');
}

if (process.argv[2] === 'child') void child();
else
  parent().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
