/**
 * The datagram's pieces, without sockets: the replay window (RFC 4303 §3.4.3 / RFC 6347
 * §4.1.2.6: reordering accepted, duplicates and too-old numbers refused, gaps counted as lost
 * until filled), sealing (round trip; any changed byte, wrong key, wrong direction or wrong
 * flow tag refused), and the DATAGRAM_* control message codec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ReplayWindow } from '../../../src/session/replay-window.js';
import { DatagramKind, EXPORTER_BYTES, HEADER_BYTES, open, overhead, parseHeader, seal, splitKeys } from '../../../src/session/datagram-seal.js';
import { RateMeter } from '../../../src/session/datagram-flow.js';
import { decodeDatagramControl, encodeDatagramControl } from '../../../src/session/protocol/datagram-messages.js';
import { isPeerlinkError } from '../../../src/errors.js';

test('replay window: in order, reordered inside the window, duplicates, too old, gaps as loss', () => {
  const w = new ReplayWindow(1024);
  const take = (seq: number): string => {
    const v = w.check(seq);
    if (v === 'ok') w.accept(seq);
    return v;
  };
  assert.equal(take(0), 'tooOld'); // sequence numbers start at 1
  assert.equal(take(1), 'ok');
  assert.equal(take(2), 'ok');
  assert.equal(take(2), 'replayed');
  assert.equal(take(5), 'ok'); // 3 and 4 skipped
  assert.equal(w.lost, 2);
  assert.equal(take(4), 'ok'); // late, inside the window
  assert.equal(w.lost, 1);
  assert.equal(w.reordered, 1);
  assert.equal(take(4), 'replayed');
  assert.equal(take(1), 'replayed');
  // Jump far ahead: the old numbers fall out of the window.
  assert.equal(take(5000), 'ok');
  assert.equal(take(5000 - 1023), 'ok'); // the oldest number still inside
  assert.equal(take(5000 - 1024), 'tooOld');
  assert.equal(take(3), 'tooOld');
  assert.equal(take(4999), 'ok');
  assert.equal(take(4999), 'replayed');
  // Every number of a slide over many windows: each accepted once, never twice.
  const v = new ReplayWindow(64);
  for (let s = 1; s <= 10_000; s++) {
    assert.equal(v.check(s), 'ok');
    v.accept(s);
    if (s > 70) assert.equal(v.check(s - 63), 'replayed', `seq ${s - 63} at top ${s}`);
    if (s > 70) assert.equal(v.check(s - 64), 'tooOld');
  }
  assert.equal(v.lost, 0);
  // Numbers beyond 2^32 work the same.
  const big = new ReplayWindow(1024);
  for (const s of [2 ** 40, 2 ** 40 + 2, 2 ** 40 + 1]) {
    assert.equal(big.check(s), 'ok');
    big.accept(s);
  }
  assert.equal(big.check(2 ** 40 + 1), 'replayed');
  assert.throws(() => new ReplayWindow(100));
});

test('seal: round trip; tampering, wrong key, wrong direction, wrong tag and truncation are refused', () => {
  const material = randomBytes(EXPORTER_BYTES);
  const client = splitKeys(material, true);
  const server = splitKeys(material, false);
  assert.ok(client.send.key.equals(server.receive.key) && client.send.iv.equals(server.receive.iv));
  assert.ok(!client.send.key.equals(client.receive.key));
  const tag = randomBytes(8);
  const payload = Buffer.from('hello, datagram');
  const d = Buffer.concat(seal(DatagramKind.DATA, tag, 7, payload, client.send));
  assert.equal(d.length, payload.length + overhead(true));
  const h = parseHeader(d, tag, true);
  assert.deepEqual(h, { kind: DatagramKind.DATA, seq: 7 });
  assert.deepEqual(open(d, 7, server.receive), payload);
  // Every single flipped byte is caught: header bytes by the tag/kind check or the AEAD (they are its AAD), the rest by the AEAD.
  for (let i = 0; i < d.length; i++) {
    const t = Buffer.from(d);
    t[i] = (t[i] as number) ^ 0x40;
    const th = parseHeader(t, tag, true);
    assert.ok(th === undefined || open(t, th.seq, server.receive) === undefined, `byte ${i} flipped`);
  }
  assert.equal(open(d, 7, client.receive), undefined, 'own direction key');
  assert.equal(open(d, 7, splitKeys(randomBytes(EXPORTER_BYTES), false).receive), undefined, 'another session');
  assert.equal(open(d, 8, server.receive), undefined, 'another sequence number (nonce)');
  assert.equal(parseHeader(d, randomBytes(8), true), undefined, 'another flow');
  assert.equal(parseHeader(d.subarray(0, HEADER_BYTES + 15), tag, true), undefined, 'shorter than header + AEAD tag');
  // Unsecured: the payload in clear behind the header; only the flow tag and sequence number are checked.
  const clear = Buffer.concat(seal(DatagramKind.DATA, tag, 3, payload, undefined));
  assert.equal(clear.length, payload.length + overhead(false));
  assert.deepEqual(parseHeader(clear, tag, false), { kind: DatagramKind.DATA, seq: 3 });
  assert.deepEqual(open(clear, 3, undefined), payload);
  assert.equal(parseHeader(clear, randomBytes(8), false), undefined);
  const zero = Buffer.from(clear);
  zero.fill(0, 9, 17);
  assert.equal(parseHeader(zero, tag, false), undefined, 'sequence number 0');
  const kind = Buffer.from(clear);
  kind[0] = 9;
  assert.equal(parseHeader(kind, tag, false), undefined, 'unknown kind');
});

test('DATAGRAM_OPEN / ACCEPT / CLOSE: round trip; wrong lengths and OPEN port 0 are malformed; other codes not ours', () => {
  const token = randomBytes(16);
  for (const m of [{ type: 'open', token, port: 4000 }, { type: 'accept', token, port: 0 }, { type: 'close', token }] as const) {
    const { code, body } = encodeDatagramControl(m);
    assert.deepEqual(decodeDatagramControl(code, body), m);
    assert.throws(() => decodeDatagramControl(code, Buffer.concat([body, Buffer.of(0)])), (e) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
    assert.throws(() => decodeDatagramControl(code, body.subarray(1)), (e) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
  }
  const open0 = encodeDatagramControl({ type: 'accept', token, port: 0 });
  assert.throws(() => decodeDatagramControl(0x60, open0.body), (e) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
  assert.equal(decodeDatagramControl(0x63, Buffer.alloc(0)), undefined);
  assert.equal(decodeDatagramControl(0x40, Buffer.alloc(0)), undefined);
});

test('datagram receive budget: per one-second window, by count and by bytes (fake time)', () => {
  const m = new RateMeter(3, 1000);
  let now = 10_000;
  const take = (bytes = 10): string => m.take(now, bytes) ?? 'ok';
  assert.deepEqual([take(), take(), take(), take()], ['ok', 'ok', 'ok', 'datagramsPerSecond']);
  now += 999;
  assert.equal(take(), 'datagramsPerSecond', 'still the same window');
  now += 1;
  assert.equal(take(), 'ok', 'a new window');
  assert.equal(take(995), 'datagramBytesPerSecond', 'bytes: 10 + 995 > 1000');
  assert.equal(take(990), 'ok', 'a refused datagram does not count');
  assert.equal(take(1), 'datagramBytesPerSecond', "the window's bytes are used up");
  assert.equal(take(0), 'ok', 'the third datagram (empty)');
  assert.equal(take(0), 'datagramsPerSecond');
});
