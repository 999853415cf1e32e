/**
 * TCP_INFO through the sockopt FFI on real loopback sockets: the fields the link-quality
 * estimate reads (RTT, retransmissions, bytes acknowledged / received, segments, delivery
 * rate) come back sane after 1 MiB crossed, on a plain socket and on a TLS Connection.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { readTcpInfo } from '../../../src/net/tcp-info.js';
import { sockoptAvailable } from '../../../src/net/sockopt.js';
import { Connection, Endpoint, Listener, Parameters } from '../../../src/net/index.js';
import { socketPair } from '../../harness/loopback.js';

const MiB = 1024 * 1024;
const linux = process.platform === 'linux';

async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

async function sendAndDrain(from: Socket, to: Socket, bytes: number): Promise<void> {
  let got = 0;
  const done = new Promise<void>((resolve) => {
    to.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= bytes) resolve();
    });
  });
  from.write(Buffer.alloc(bytes, 7));
  await done;
}

/**
 * A TLS Connection to a Listener on loopback: `read` (tcpInfo or tcpInfoIfMoved) gives nothing
 * before ready; once ready, 100 000 bytes have crossed (client to server).
 */
async function tlsPairAfter100k(t: TestContext, read: (c: Connection) => unknown): Promise<{ conn: Connection; srv: Connection }> {
  const p = Parameters.tls({ psk: { key: randomBytes(32) } }, { framer: true });
  const listener = new Listener(p, { port: 0 });
  const accepted = once(listener, 'connection') as Promise<[Connection]>;
  await listener.start();
  const conn = new Connection(Endpoint.hostPort('127.0.0.1', listener.port), p);
  t.after(() => {
    conn.forceCancel();
    void listener.cancel();
  });
  assert.equal(read(conn), undefined, 'none before ready');
  conn.start();
  await conn.whenReady();
  const [srv] = await accepted;
  t.after(() => srv.forceCancel());
  const got = srv.receiveMessage();
  await conn.send(Buffer.alloc(100_000, 1));
  assert.equal((await got)?.length, 100_000);
  return { conn, srv };
}

test('TCP_INFO on a loopback socket: established, RTT, bytes acknowledged and received, segments, delivery rate', { skip: !linux && 'Linux only' }, async (t) => {
  assert.ok(sockoptAvailable(), 'koffi loads libc here');
  const [client, server] = await socketPair(t);
  await sendAndDrain(client, server, MiB);
  // The last ACK may trail the last byte read by a moment.
  await until(() => (readTcpInfo(client)?.bytesAcked ?? 0) >= MiB, 5000);
  const c = readTcpInfo(client);
  const s = readTcpInfo(server);
  assert.ok(c && s, 'TCP_INFO read');
  assert.equal(c.state, 1, 'ESTABLISHED');
  assert.ok(c.rttUs > 0 && c.rttUs < 1_000_000, `rtt ${c.rttUs} µs`);
  assert.ok(c.rttVarUs >= 0 && c.rttVarUs < 1_000_000, `rttvar ${c.rttVarUs} µs`);
  assert.ok(c.minRttUs !== undefined && c.minRttUs > 0 && c.minRttUs <= c.rttUs * 4 + 1000, `min rtt ${c.minRttUs} µs`);
  assert.ok(c.rtoUs >= 200_000, `rto ${c.rtoUs} µs (Linux floor 200 ms)`);
  assert.ok(c.sndCwnd >= 1 && c.sndMss > 0, `cwnd ${c.sndCwnd}, mss ${c.sndMss}`);
  assert.ok((c.bytesAcked ?? 0) >= MiB && (c.bytesAcked ?? 0) < MiB + 4096, `acked ${c.bytesAcked}`);
  assert.ok((s.bytesReceived ?? 0) >= MiB && (s.bytesReceived ?? 0) < MiB + 4096, `received ${s.bytesReceived}`);
  assert.ok((c.dataSegsOut ?? 0) >= MiB / 65536 && (c.segsOut ?? 0) >= (c.dataSegsOut ?? 0), `segs ${c.segsOut}/${c.dataSegsOut}`);
  assert.ok(c.totalRetrans >= 0 && c.totalRetrans <= (c.dataSegsOut ?? 0));
  assert.ok(c.deliveryRate !== undefined && c.deliveryRate > 0, `delivery rate ${c.deliveryRate} B/s`);
  assert.equal(typeof c.deliveryRateAppLimited, 'boolean');
  assert.equal(c.notsentBytes, 0);
  assert.equal(c.backoff, 0);
  // The counters move with traffic.
  await sendAndDrain(server, client, 64 * 1024);
  await until(() => (readTcpInfo(client)?.bytesReceived ?? 0) >= (c.bytesReceived ?? 0) + 64 * 1024, 5000);
  assert.ok((readTcpInfo(client)?.bytesReceived ?? 0) >= 64 * 1024);
  client.destroy();
  await once(client, 'close');
  assert.equal(readTcpInfo(client), undefined, 'nothing from a closed socket');
});

test('Connection.tcpInfo(): the TCP socket under TLS, on both ends', { skip: !linux && 'Linux only' }, async (t) => {
  const { conn, srv } = await tlsPairAfter100k(t, (c) => c.tcpInfo());
  await until(() => (conn.tcpInfo()?.bytesAcked ?? 0) > 100_000, 5000);
  const c = conn.tcpInfo();
  const s = srv.tcpInfo();
  assert.ok(c && s);
  assert.equal(c.state, 1);
  assert.ok(c.rttUs > 0 && c.rttUs < 1_000_000);
  // TLS records and the handshake ride on top of the 100 000 bytes.
  assert.ok((c.bytesAcked ?? 0) > 100_000 && (s.bytesReceived ?? 0) > 100_000, `${c.bytesAcked} / ${s.bytesReceived}`);
  conn.forceCancel();
  assert.equal(conn.tcpInfo(), undefined, 'none once cancelled');
});

test('Connection.tcpInfoIfMoved(): read again only after traffic, or while data is in flight; a quiet connection costs no getsockopt', { skip: !linux && 'Linux only' }, async (t) => {
  const { conn, srv } = await tlsPairAfter100k(t, (c) => c.tcpInfoIfMoved());
  // wait until everything is acknowledged: then nothing is in flight
  await until(() => (conn.tcpInfo()?.bytesAcked ?? 0) > 100_000 && conn.tcpInfo()?.unacked === 0, 5000);
  const a = conn.tcpInfoIfMoved();
  assert.ok(a && a.unacked === 0 && a.notsentBytes === 0, 'read');
  assert.equal(conn.tcpInfoIfMoved(), a, 'nothing moved and nothing in flight: the same reading, no getsockopt');
  // traffic either way makes the next call read the kernel again
  const back = conn.receiveMessage();
  await srv.send(Buffer.alloc(10_000, 2));
  assert.equal((await back)?.length, 10_000);
  const b = conn.tcpInfoIfMoved();
  assert.ok(b && b !== a, 'a fresh reading after bytes were read');
  assert.ok((b.bytesReceived ?? 0) >= (a.bytesReceived ?? 0) + 10_000, `${b.bytesReceived} vs ${a.bytesReceived}`);
  assert.equal(conn.tcpInfoIfMoved(), b);
  await conn.send(Buffer.alloc(10, 3));
  // (the framer hands the frame to the socket on its next flush)
  let c = conn.tcpInfoIfMoved();
  await until(() => (c = conn.tcpInfoIfMoved()) !== b, 2000);
  assert.ok(c && c !== b, 'a fresh reading after bytes were written');
  // data in flight (unacknowledged, unsent) or a backoff: read every time, traffic or not
  const last = (conn as unknown as { lastTcpInfo: { info: unknown; mark: number } }).lastTcpInfo;
  // (once the 10 bytes are acknowledged)
  await until(() => conn.tcpInfoIfMoved()?.unacked === 0, 2000);
  const quiet = conn.tcpInfoIfMoved();
  assert.ok(quiet && quiet.unacked === 0 && quiet.notsentBytes === 0 && quiet.backoff === 0, JSON.stringify(quiet));
  assert.equal(conn.tcpInfoIfMoved(), quiet, 'quiet again');
  for (const [what, changed] of [['unacknowledged data', { unacked: 1 }], ['an unsent send queue', { notsentBytes: 1 }], ['a retransmission backoff', { backoff: 1 }], ['a kernel that does not report the send queue', { notsentBytes: undefined }]] as const) {
    const stale = { ...quiet, ...changed };
    last.info = stale;
    assert.notEqual(conn.tcpInfoIfMoved(), stale, `${what} at the last reading: read again`);
  }
  conn.forceCancel();
  assert.equal(conn.tcpInfoIfMoved(), undefined, 'none once cancelled');
});
