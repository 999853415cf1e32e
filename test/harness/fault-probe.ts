/**
 * Traffic probes for fault-lab tests, run inside a lab host (`FaultLab.probe`). Plain
 * sockets only, so a probe measures what the network did, not what the library did.
 * Every mode prints JSON lines and exits on its own (bounded in time).
 *
 *   udp-sink  <port> <ms>                   → {"ready":true} … {"received":n,"bytes":b}
 *   udp-send  <host> <port> <count> [size]  → {"sent":n}   (paced: 10 datagrams per ms tick)
 *   udp-echo  <port> <ms>                   → {"ready":true}, echoes every datagram
 *   udp-ask   <host> <port> <waitMs>        → {"reply":true|false,"ms":t}
 *   tcp-sink  <port> <ms>                   → {"ready":true} … {"received":b,"ms":t}
 *   tcp-send  <host> <port> <bytes>         → {"sent":b,"ms":t} | {"error":code}
 *   tcp-connect <host> <port> <waitMs>      → {"connected":bool,"error":code|null,"ms":t}
 */
import { createSocket } from 'node:dgram';
import { createConnection, createServer } from 'node:net';

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};
const [mode, ...args] = process.argv.slice(2);
const num = (i: number, dflt?: number): number => {
  const v = args[i] === undefined ? dflt : Number(args[i]);
  if (v === undefined || !Number.isFinite(v)) throw new Error(`argument ${i} must be a number`);
  return v;
};
const family = (host: string): 'udp4' | 'udp6' => (host.includes(':') ? 'udp6' : 'udp4');

function udpSink(port: number, ms: number): void {
  const s = createSocket({ type: 'udp6', ipv6Only: false });
  let received = 0;
  let bytes = 0;
  s.on('message', (m) => {
    received++;
    bytes += m.length;
  });
  s.bind(port, () => {
    s.setRecvBufferSize(4 * 1024 * 1024);
    out({ ready: true });
  });
  const finish = (): void => {
    out({ received, bytes });
    process.exit(0);
  };
  setTimeout(finish, ms);
  process.on('SIGTERM', finish);
}

function udpSend(host: string, port: number, count: number, size: number): void {
  const s = createSocket(family(host));
  const payload = Buffer.alloc(size, 0x61);
  let sent = 0;
  const tick = (): void => {
    for (let i = 0; i < 10 && sent < count; i++, sent++) s.send(payload, port, host);
    if (sent < count) setTimeout(tick, 1);
    else setTimeout(() => {
      out({ sent });
      process.exit(0);
    }, 100);
  };
  s.bind(0, tick);
}

function udpEcho(port: number, ms: number): void {
  const s = createSocket({ type: 'udp6', ipv6Only: false });
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(port, () => out({ ready: true }));
  setTimeout(() => process.exit(0), ms);
}

function udpAsk(host: string, port: number, waitMs: number): void {
  const s = createSocket(family(host));
  const t0 = Date.now();
  s.on('message', () => {
    out({ reply: true, ms: Date.now() - t0 });
    process.exit(0);
  });
  s.bind(0, () => s.send('ping', port, host));
  setTimeout(() => {
    out({ reply: false, ms: Date.now() - t0 });
    process.exit(0);
  }, waitMs);
}

function tcpSink(port: number, ms: number): void {
  const srv = createServer((c) => {
    const t0 = Date.now();
    let received = 0;
    c.on('data', (d: Buffer) => {
      received += d.length;
    });
    c.on('end', () => {
      out({ received, ms: Date.now() - t0 });
      c.end();
    });
    c.on('error', () => undefined);
  });
  srv.listen(port, () => out({ ready: true }));
  setTimeout(() => process.exit(0), ms);
}

function tcpSend(host: string, port: number, bytes: number): void {
  const t0 = Date.now();
  const c = createConnection({ host, port });
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let sent = 0;
  const pump = (): void => {
    while (sent < bytes) {
      const n = Math.min(chunk.length, bytes - sent);
      sent += n;
      if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        c.once('drain', pump);
        return;
      }
    }
    c.end();
  };
  c.on('connect', pump);
  c.resume();
  c.on('close', () => {
    out({ sent, ms: Date.now() - t0 });
    process.exit(0);
  });
  c.on('error', (err: NodeJS.ErrnoException) => {
    out({ error: err.code ?? err.message });
    process.exit(0);
  });
}

function tcpConnect(host: string, port: number, waitMs: number): void {
  const t0 = Date.now();
  const c = createConnection({ host, port });
  const done = (connected: boolean, error: string | null): void => {
    out({ connected, error, ms: Date.now() - t0 });
    process.exit(0);
  };
  c.on('connect', () => done(true, null));
  c.on('error', (err: NodeJS.ErrnoException) => done(false, err.code ?? err.message));
  setTimeout(() => done(false, 'TIMEOUT'), waitMs);
}

switch (mode) {
  case 'udp-sink':
    udpSink(num(0), num(1));
    break;
  case 'udp-send':
    udpSend(args[0] ?? '', num(1), num(2), num(3, 64));
    break;
  case 'udp-echo':
    udpEcho(num(0), num(1));
    break;
  case 'udp-ask':
    udpAsk(args[0] ?? '', num(1), num(2));
    break;
  case 'tcp-sink':
    tcpSink(num(0), num(1));
    break;
  case 'tcp-send':
    tcpSend(args[0] ?? '', num(1), num(2));
    break;
  case 'tcp-connect':
    tcpConnect(args[0] ?? '', num(1), num(2));
    break;
  default:
    process.stderr.write(`fault-probe: unknown mode ${String(mode)}\n`);
    process.exit(2);
}
