import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Endpoint } from '../../../src/net/endpoint.js';
import { Parameters } from '../../../src/net/parameters.js';
import { sortForRace } from '../../../src/net/dial.js';
import { parsePsk } from '../../../src/net/psk.js';
import { generateIdentity, parsePin, spkiPin } from '../../../src/net/identity.js';
import { ReceiveQueue } from '../../../src/net/receive-queue.js';
import { toPeerlinkError } from '../../../src/net/net-errors.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { satisfyingInterfaces } from '../../../src/net/interface-policy.js';
import type { NetworkInterface } from '../../../src/path/interfaces.js';

test('Endpoint.hostPort parses zones and brackets; service validates the type', () => {
  assert.deepEqual(Endpoint.hostPort('[fe80::1%eth0]', 80), { kind: 'hostPort', host: 'fe80::1', port: 80, interface: 'eth0' });
  assert.deepEqual(Endpoint.hostPort('127.0.0.1', 0), { kind: 'hostPort', host: '127.0.0.1', port: 0 });
  assert.equal(Endpoint.format(Endpoint.hostPort('fe80::1%lo', 9)), '[fe80::1%lo]:9');
  assert.throws(() => Endpoint.hostPort('x', 70000), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  const s = Endpoint.service('Living Room', '_example._tcp');
  assert.equal(s.domain, 'local.');
  assert.throws(() => Endpoint.service('x', 'example'), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_SERVICE_TYPE'));
});

test('Parameters factories pick the stack', () => {
  assert.equal(Parameters.tcp().isMessageProtocol, false);
  assert.equal(Parameters.tcp({ framer: true }).application, 'framer');
  assert.equal(Parameters.ws().keepalive?.interval, 10_000);
  assert.equal(Parameters.ws({ keepalive: false }).keepalive, undefined);
  assert.equal(Parameters.udp().isMessageProtocol, true);
  assert.equal(Parameters.tls({ psk: { key: '00'.repeat(16) } }, { framer: true }).describe(), 'tls(psk)+framer(length-prefix) over tcp');
  assert.throws(() => Parameters.tcp({ keepalive: true }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  const p = Parameters.tcp();
  p.requiredInterface = 'lo';
  assert.deepEqual(p.constraints, { requiredInterface: 'lo' });
});

test('Happy Eyeballs order: families interleaved, IPv6 first, duplicates removed', () => {
  const sorted = sortForRace([
    { address: '10.0.0.1', family: 4 },
    { address: '10.0.0.2', family: 4 },
    { address: '2001:db8::1', family: 6 },
    { address: '10.0.0.1', family: 4 },
  ]);
  assert.deepEqual(sorted.map((a) => a.address), ['2001:db8::1', '10.0.0.1', '10.0.0.2']);
});

test('PSK parsing: hex, bytes, minimum length', () => {
  assert.equal(parsePsk('00112233445566778899aabbccddeeff').length, 16);
  assert.equal(parsePsk(new Uint8Array(32)).length, 32);
  assert.throws(() => parsePsk('0011'), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => parsePsk('zz'.repeat(16)), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
});

test('pins: sha256/BASE64 and hex forms agree', async () => {
  const id = await generateIdentity();
  assert.equal(spkiPin(id.cert), id.pin);
  const b = parsePin(id.pin);
  assert.ok(parsePin(b.toString('hex')).equals(b));
  assert.ok(parsePin(b.toString('hex').replace(/(..)(?!$)/g, '$1:')).equals(b));
  assert.throws(() => parsePin('sha256/abc'), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
});

test('receive queue pauses above the high-water mark and resumes below half', async () => {
  let paused = 0;
  let resumed = 0;
  const q = new ReceiveQueue(100, () => paused++, () => resumed++);
  for (let i = 0; i < 10; i++) q.push(Buffer.alloc(20));
  assert.equal(paused, 1);
  assert.equal(q.bufferedBytes, 200);
  const got = await q.nextBytes(1, 150);
  assert.equal(got?.length, 150);
  assert.equal(resumed, 1);
  q.end();
  assert.equal((await q.nextBytes(100, 100))?.length, 50);
  assert.equal(await q.nextBytes(1, 10), null);
});

test('receive queue: a flood of empty messages pauses the transport too (items count, not only bytes)', () => {
  let paused = 0;
  let resumed = 0;
  const q = new ReceiveQueue(1 << 20, () => paused++, () => resumed++);
  const empty = Buffer.alloc(0);
  for (let i = 0; i < 70_000; i++) q.push(empty);
  assert.equal(q.bufferedBytes, 0);
  assert.equal(paused, 1, 'paused by item count');
  while (q.length > 40_000) q.tryNext();
  assert.equal(resumed, 0, 'not yet below half');
  while (q.length > 30_000) q.tryNext();
  assert.equal(resumed, 1);
});

test('receive queue: pieces keep their complete flag through queueing and waiting readers', async () => {
  const q = new ReceiveQueue(1 << 20, () => undefined, () => undefined);
  const waiting = q.nextPart();
  q.push(Buffer.from('a'), false);
  assert.deepEqual(await waiting, { data: Buffer.from('a'), complete: false });
  q.push(Buffer.from('b'), false);
  q.push(Buffer.from('c'), true);
  assert.deepEqual(await q.nextPart(), { data: Buffer.from('b'), complete: false });
  assert.deepEqual(await q.nextPart(), { data: Buffer.from('c'), complete: true });
  q.end();
  assert.equal(await q.nextPart(), null);
});

test('receive queue: waiting readers are served in order; failure after data', async () => {
  const q = new ReceiveQueue(1 << 20, () => undefined, () => undefined);
  const a = q.nextMessage();
  const b = q.nextMessage();
  q.push(Buffer.from('1'));
  q.push(Buffer.from('2'));
  q.push(Buffer.from('3'));
  assert.equal(String(await a), '1');
  assert.equal(String(await b), '2');
  q.close(toPeerlinkError(Object.assign(new Error('x'), { code: 'ECONNRESET' })), false);
  assert.equal(String(await q.nextMessage()), '3');
  await assert.rejects(q.nextMessage(), (e: unknown) => isPeerlinkError(e, 'ERR_CONNECTION_RESET'));
});

test('error mapping', () => {
  const m = (code: string, tls?: 'psk' | 'pki'): string => toPeerlinkError(Object.assign(new Error(code), { code }), tls ? { tls } : {}).code;
  assert.equal(m('ECONNREFUSED'), 'ERR_CONNECTION_REFUSED');
  assert.equal(m('ERR_SSL_BINDER_DOES_NOT_VERIFY', 'psk'), 'ERR_PSK_MISMATCH');
  assert.equal(m('ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC', 'psk'), 'ERR_PSK_MISMATCH');
  // a reset mid-handshake is a side that gave up or went away, not a wrong key
  const handshake = (code: string): string => toPeerlinkError(Object.assign(new Error(code), { code }), { tls: 'psk', during: 'handshake' }).code;
  assert.equal(handshake('ECONNRESET'), 'ERR_CONNECTION_RESET');
  assert.equal(handshake('EPIPE'), 'ERR_CONNECTION_RESET');
  assert.equal(m('DEPTH_ZERO_SELF_SIGNED_CERT', 'pki'), 'ERR_CERT_UNTRUSTED');
  assert.equal(m('ERR_SSL_WRONG_VERSION_NUMBER', 'pki'), 'ERR_TLS_HANDSHAKE');
});

test('interface constraints', () => {
  const mk = (name: string, type: NetworkInterface['type'], up = true): NetworkInterface => ({
    name,
    index: 1,
    type,
    mtu: 1500,
    addresses: [],
    flags: { up, running: up, broadcast: true, multicast: true, loopback: type === 'loopback', pointToPoint: false },
  });
  const all = [mk('lo', 'loopback'), mk('eth0', 'wiredEthernet'), mk('wlan0', 'wifi'), mk('wwan0', 'cellular'), mk('eth1', 'wiredEthernet', false)];
  const names = (c: Parameters['constraints']): string[] => satisfyingInterfaces(c, all).map((i) => i.name);
  assert.deepEqual(names({ requiredInterface: 'eth0' }), ['eth0']);
  assert.deepEqual(names({ requiredInterfaceType: 'wiredEthernet' }), ['eth0']);
  assert.deepEqual(names({ prohibitedInterfaceTypes: ['loopback', 'wifi'], prohibitExpensivePaths: true }), ['eth0']);
  assert.deepEqual(names({ prohibitedInterfaces: ['lo', 'eth0'] }), ['wlan0', 'wwan0']);
});

test('maximumDatagramSize: MTU minus IPv4 / IPv6 headers, loopback by either address', async () => {
  const { maxDatagramFor } = await import('../../../src/net/udp-channel.js');
  assert.equal(maxDatagramFor('127.0.0.1', 0), 65507);
  assert.equal(maxDatagramFor('::', 0, '::ffff:127.0.0.1'), 65507);
  assert.equal(maxDatagramFor('::1', 0), 65488);
  assert.equal(maxDatagramFor('127.0.0.1', 40), 65467);
  // an address on no interface: assume an ordinary 1500-byte Ethernet MTU
  assert.equal(maxDatagramFor('192.0.2.1', 0, '198.51.100.7'), 1472);
});

test('maximumDatagramSize follows an MTU change on the flow (path watch); larger sends are refused', async () => {
  const { UdpChannel } = await import('../../../src/net/udp-channel.js');
  const { createSocket } = await import('node:dgram');
  const sock = createSocket('udp4'); // never bound, nothing is sent: the size check comes first
  const ch = new UdpChannel(sock, { address: '192.0.2.1', port: 5000 }, { address: '198.51.100.7', port: 5001 }, true, 8);
  assert.equal(ch.maximumDatagramSize, 1500 - 28 - 8);
  ch.mtuChanged(1280);
  assert.equal(ch.maximumDatagramSize, 1280 - 28 - 8);
  await assert.rejects(ch.send(Buffer.alloc(1280 - 28 - 8 + 1), false), (e: unknown) => (e as { code?: string }).code === 'ERR_DATAGRAM_TOO_LARGE');
  ch.closeFlow(undefined);
});
