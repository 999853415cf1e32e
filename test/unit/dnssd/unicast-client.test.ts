/**
 * The unicast DNS client against hostile and awkward servers on loopback: hand-built
 * answers (never our encoder's output for the hostile ones), garbage, wrong IDs, pointer
 * loops, truncation to TCP, oversized TCP answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { DnsClient } from '../../../src/dnssd/unicast/client.js';
import { encodePacket, CLASS_IN, RRType, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { TsigKey, signResponse, verifyRequest } from '../../../src/dnssd/unicast/tsig.js';
import { Rcode } from '../../../src/dnssd/unicast/update.js';

/** The question section of a query as the client sent it (bytes 12..end of question). */
function questionOf(q: Buffer): Buffer {
  let off = 12;
  while ((q[off] as number) !== 0) off += 1 + (q[off] as number);
  return q.subarray(12, off + 5);
}

function header(id: number, flags: number, qd: number, an: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  return h;
}

async function udpServer(reply: (q: Buffer, send: (b: Buffer) => void) => void): Promise<{ sock: UdpSocket; port: number }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  sock.on('message', (q, rinfo) => reply(q, (b) => sock.send(b, rinfo.port, rinfo.address)));
  // a failed assertion must not leave the file hanging on an open socket
  sock.unref();
  return { sock, port: sock.address().port };
}

/**
 * A UDP server and a TCP server on the same loopback port (DNS over TCP for truncated answers,
 * RFC 7766). The UDP port is ephemeral; another test file running in parallel may already hold
 * that port number for TCP, so a clash is retried on a fresh port (at most 20 times).
 */
async function udpAndTcpServer(
  reply: (q: Buffer, send: (b: Buffer) => void) => void,
  tcpReply: (q: Buffer) => Buffer,
): Promise<{ sock: UdpSocket; tcp: Server; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const { sock, port } = await udpServer(reply);
    try {
      return { sock, tcp: await tcpServer(port, tcpReply), port };
    } catch (e) {
      sock.close();
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 19) throw e;
    }
  }
}

async function tcpServer(port: number, reply: (q: Buffer) => Buffer): Promise<Server> {
  const srv = createServer((c) => {
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) c.write(reply(buf.subarray(2, 2 + buf.readUInt16BE(0))));
    });
    c.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      srv.off('error', reject);
      resolve();
    });
  });
  srv.unref();
  return srv;
}

test('garbage, wrong IDs and a compression-pointer loop are ignored: the query times out with ERR_DNS_TIMEOUT, no crash', async () => {
  const { sock, port } = await udpServer((q, send) => {
    const id = q.readUInt16BE(0);
    send(Buffer.from([1, 2, 3]));
    send(Buffer.concat([header(id ^ 1, 0x8400, 1, 0), questionOf(q)]));
    // answer whose name is a pointer to itself
    const loop = Buffer.concat([header(id, 0x8400, 1, 1), questionOf(q), Buffer.from([0xc0, 12 + questionOf(q).length, 0, 12, 0, 1, 0, 0, 0, 60, 0, 0])]);
    send(loop);
    send(Buffer.alloc(20_000, 0xff));
  });
  const client = new DnsClient({ timeoutMs: 400, attempts: 1 });
  await assert.rejects(client.query({ address: '127.0.0.1', port }, 'x.example.test', RRType.PTR), (e: unknown) => isPeerlinkError(e, 'ERR_DNS_TIMEOUT'));
  sock.close();
});

test('a truncated UDP answer is asked again over TCP (answers larger than a UDP packet work); an oversized TCP answer is refused', async () => {
  const big: ResourceRecord[] = Array.from({ length: 300 }, (_, i) => ({ name: '_p._tcp.example.test', type: 'PTR', target: `instance-number-${i}-${'x'.repeat(20)}._p._tcp.example.test`, ttl: 60, rrclass: CLASS_IN, cacheFlush: false }));
  let mode: 'ok' | 'huge' = 'ok';
  const { sock, tcp, port } = await udpAndTcpServer(
    (q, send) => send(Buffer.concat([header(q.readUInt16BE(0), 0x8600, 1, 0), questionOf(q)])),
    (q) => {
      if (mode === 'huge') {
        const h = Buffer.alloc(2);
        h.writeUInt16BE(0xffff);
        return Buffer.concat([h, Buffer.alloc(0x10000 + 100, 0)]);
      }
      const body = encodePacket({ id: q.readUInt16BE(0), response: true, opcode: 0, authoritative: true, truncated: false, rcode: 0, questions: [{ name: '_p._tcp.example.test', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: false }], answers: big, authorities: [], additionals: [] }, 65535);
      const h = Buffer.alloc(2);
      h.writeUInt16BE(body.length);
      return Buffer.concat([h, body]);
    },
  );
  const client = new DnsClient({ timeoutMs: 2000, attempts: 1 });
  const p = await client.query({ address: '127.0.0.1', port }, '_p._tcp.example.test', RRType.PTR);
  assert.equal(p.answers.length, 300);
  mode = 'huge';
  await assert.rejects(client.query({ address: '127.0.0.1', port }, '_p._tcp.example.test', RRType.PTR), (e: unknown) => isPeerlinkError(e, 'ERR_DNS_SERVER_FAILURE'));
  sock.close();
  tcp.close();
});

test('an answer to another question is not taken for ours', async () => {
  const { sock, port } = await udpServer((q, send) => {
    const other = encodePacket({ id: q.readUInt16BE(0), response: true, opcode: 0, authoritative: true, truncated: false, rcode: 0, questions: [{ name: 'evil.example.test', qtype: RRType.A, qclass: CLASS_IN, unicastResponse: false }], answers: [], authorities: [], additionals: [] });
    send(other);
  });
  const client = new DnsClient({ timeoutMs: 400, attempts: 1 });
  await assert.rejects(client.query({ address: '127.0.0.1', port }, 'x.example.test', RRType.A), (e: unknown) => isPeerlinkError(e, 'ERR_DNS_TIMEOUT'));
  sock.close();
});

test('a signed update believes only an answer signed with the key: a spoofed unsigned NOERROR (and one with a bad MAC) is ignored', async () => {
  const key = new TsigKey('k', 'hmac-sha256', Buffer.alloc(32, 5));
  let real: number = Rcode.YXDOMAIN;
  const { sock, port } = await udpServer((q, send) => {
    const now = Date.now() / 1000;
    assert.equal(verifyRequest(q, key, { now }).verified, true);
    // the request's MAC: the TSIG RR's MAC field (32 bytes before original id, error, other len)
    const mac = q.subarray(q.length - 6 - 32, q.length - 6);
    const zoneQ = questionOf(q);
    const body = (rcode: number): Buffer => Buffer.concat([header(q.readUInt16BE(0), 0x8000 | (5 << 11) | rcode, 1, 0), zoneQ]);
    send(body(Rcode.NOERROR)); // spoofed: unsigned
    send(signResponse(body(Rcode.NOERROR), new TsigKey('k', 'hmac-sha256', Buffer.alloc(32, 6)), mac, { now })); // wrong key
    setTimeout(() => send(signResponse(body(real), key, mac, { now })), 50);
  });
  const client = new DnsClient({ timeoutMs: 2000, attempts: 1 });
  const u = { zone: 'example.test', prerequisites: [], updates: [] };
  assert.equal(await client.update({ address: '127.0.0.1', port }, u, key), Rcode.YXDOMAIN);
  real = Rcode.NOERROR;
  assert.equal(await client.update({ address: '127.0.0.1', port }, u, key), Rcode.NOERROR);
  sock.close();
});

/** A zone on loopback (UDP, and TCP for truncated answers) listing `count` instances of `_p._tcp.example.test` and one elsewhere. */
async function hostileZone(t: { after: (fn: () => void) => void }, count: number): Promise<{ port: number; srvQueries: () => number }> {
  const { decodePacket } = await import('../../../src/dnssd/codec/index.js');
  const type = '_p._tcp.example.test';
  const base = { ttl: 30, rrclass: CLASS_IN, cacheFlush: false };
  let srvQueries = 0;
  const answer = (q: Buffer): Buffer => {
    const p = decodePacket(q);
    const question = p.questions[0] as { name: string; qtype: number; qclass: number; unicastResponse: boolean };
    let answers: ResourceRecord[] = [];
    if (question.qtype === RRType.PTR) {
      answers = Array.from({ length: count }, (_, i) => ({ ...base, name: type, type: 'PTR' as const, target: `i${i}.${type}` }));
      answers.push({ ...base, name: type, type: 'PTR', target: `evil._p._tcp.elsewhere.test` });
    } else if (question.qtype === RRType.SRV) {
      srvQueries++;
      answers = [{ ...base, name: question.name, type: 'SRV', priority: 0, weight: 0, port: 9, target: 'h.example.test' }];
    } else if (question.qtype === RRType.A) answers = [{ ...base, name: question.name, type: 'A', address: '10.0.0.1' }];
    return encodePacket({ id: p.id, response: true, opcode: 0, authoritative: true, truncated: false, rcode: 0, questions: [question], answers, authorities: [], additionals: [] }, 65535);
  };
  const { sock, tcp, port } = await udpAndTcpServer(
    (q, send) => {
      const full = answer(q);
      if (full.length <= 1232) send(full);
      else send(Buffer.concat([header(q.readUInt16BE(0), 0x8600, 1, 0), questionOf(q)]));
    },
    (q) => {
      const body = answer(q);
      const h = Buffer.alloc(2);
      h.writeUInt16BE(body.length);
      return Buffer.concat([h, body]);
    },
  );
  t.after(() => {
    sock.close();
    tcp.close();
  });
  return { port, srvQueries: () => srvQueries };
}

test('a browser facing a zone that lists 400 instances (and one elsewhere) follows at most 256, and only in its own domain', async (t) => {
  const { UnicastBrowser, MAX_INSTANCES } = await import('../../../src/dnssd/unicast/browse.js');
  const { UnicastContext } = await import('../../../src/dnssd/unicast/context.js');
  const zone = await hostileZone(t, 400);
  const ctx = new UnicastContext({ dnsServer: { address: '127.0.0.1', port: zone.port }, client: new DnsClient({ timeoutMs: 2000, attempts: 1 }) });
  const b = new UnicastBrowser(ctx, { type: '_p._tcp', domain: 'example.test', maxInterval: 60 });
  let added = 0;
  b.on('added', () => added++);
  const errors: Error[] = [];
  b.on('error', (e) => errors.push(e));
  const round = b.nextRound();
  b.start();
  await round;
  b.stop();
  assert.deepEqual(errors, []);
  assert.equal(added, MAX_INSTANCES);
  assert.equal(zone.srvQueries(), MAX_INSTANCES);
  assert.ok(b.services.every((s) => s.domain === 'example.test' && s.addresses[0] === '10.0.0.1'));
});

test('wide-area limits given in WideAreaOptions.limits reach the browser and the client: instances followed, TCP answer size', async (t) => {
  const { UnicastBrowser } = await import('../../../src/dnssd/unicast/browse.js');
  const { resolveWideArea } = await import('../../../src/dnssd/unicast/wide-area.js');
  const zone = await hostileZone(t, 400);
  const wa = resolveWideArea({ domains: ['example.test'], dnsServer: `127.0.0.1:${zone.port}`, limits: { maxInstances: 20, resolveConcurrency: 2, queryTimeout: 2000, queryAttempts: 1 } });
  assert.ok(wa);
  const b = new UnicastBrowser(wa.ctx, { type: '_p._tcp', domain: 'example.test', maxInterval: 60 });
  let added = 0;
  b.on('added', () => added++);
  const round = b.nextRound();
  b.start();
  await round;
  b.stop();
  assert.equal(added, 20);
  assert.equal(zone.srvQueries(), 20);
  // 400 PTRs come back over TCP in about 10 KB: over a 4 KB limit the answer is refused
  const small = resolveWideArea({ domains: ['example.test'], dnsServer: `127.0.0.1:${zone.port}`, limits: { maxTcpAnswer: 4096, queryTimeout: 2000, queryAttempts: 1 } });
  assert.ok(small);
  await assert.rejects(small.ctx.query('_p._tcp.example.test', RRType.PTR), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_DNS_SERVER_FAILURE');
  assert.throws(() => resolveWideArea({ domains: ['example.test'], limits: { maxInstances: 0 } }), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_INVALID_ARGUMENT');
  assert.throws(() => resolveWideArea({ domains: ['example.test'], limits: { queryAttempts: 1.5 } }), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_INVALID_ARGUMENT');
});

test('a browser does not report an instance removed when a query about it fails; it does when its PTR goes', async (t) => {
  const { UnicastBrowser } = await import('../../../src/dnssd/unicast/browse.js');
  const { UnicastContext } = await import('../../../src/dnssd/unicast/context.js');
  const { decodePacket } = await import('../../../src/dnssd/codec/index.js');
  const type = '_p._tcp.example.test';
  const base = { ttl: 1, rrclass: CLASS_IN, cacheFlush: false };
  let phase: 'ok' | 'srv-down' | 'gone' = 'ok';
  const { sock, port } = await udpServer((q, send) => {
    const p = decodePacket(q);
    const question = p.questions[0] as { name: string; qtype: number; qclass: number; unicastResponse: boolean };
    let answers: ResourceRecord[] = [];
    if (question.qtype === RRType.PTR && phase !== 'gone') answers = [{ ...base, name: type, type: 'PTR', target: `one.${type}` }];
    if (question.qtype === RRType.SRV) {
      if (phase === 'srv-down') return; // no answer: the query times out
      answers = [{ ...base, name: question.name, type: 'SRV', priority: 0, weight: 0, port: 9, target: 'h.example.test' }];
    }
    if (question.qtype === RRType.A) answers = [{ ...base, name: question.name, type: 'A', address: '10.0.0.1' }];
    send(encodePacket({ id: p.id, response: true, opcode: 0, authoritative: true, truncated: false, rcode: 0, questions: [question], answers, authorities: [], additionals: [] }));
  });
  t.after(() => sock.close());
  const ctx = new UnicastContext({ dnsServer: { address: '127.0.0.1', port }, client: new DnsClient({ timeoutMs: 300, attempts: 1 }) });
  const b = new UnicastBrowser(ctx, { type: '_p._tcp', domain: 'example.test', minInterval: 1, maxInterval: 1 });
  const events: string[] = [];
  b.on('added', () => events.push('added'));
  b.on('removed', () => events.push('removed'));
  b.on('changed', () => events.push('changed'));
  t.after(() => b.stop());
  // the browser's timers do not hold the process open (unref): this test does, while it waits
  const hold = setInterval(() => undefined, 1000);
  t.after(() => clearInterval(hold));
  let round = b.nextRound();
  b.start();
  await round;
  assert.deepEqual(events, ['added']);
  phase = 'srv-down';
  round = b.nextRound();
  await round;
  assert.deepEqual(events, ['added']);
  phase = 'gone';
  round = b.nextRound();
  await round;
  assert.deepEqual(events, ['added', 'removed']);
});
