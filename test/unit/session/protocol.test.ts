import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeMessage, encodeMessage, encodeMessageBuffer } from '../../../src/session/protocol/codec.js';
import { MessageType, Limits, type SessionMessage, type HelloMessage } from '../../../src/session/protocol/messages.js';
import { isPeerlinkError } from '../../../src/errors.js';

const opts = { maxDataSize: 1024 };

function hello(over: Partial<HelloMessage> = {}): HelloMessage {
  return {
    type: 'hello',
    version: 1,
    role: 'peer',
    peerId: randomBytes(16),
    nonce: randomBytes(16),
    capabilities: 3,
    maxMessageSize: 4 << 20,
    listenPort: 4321,
    lastGeneration: 99,
    displayName: 'Zoë’s laptop',
    instanceName: 'Zoë’s laptop (2)',
    ...over,
  };
}

const roundTrips: Array<Exclude<SessionMessage, { type: 'unknown' }>> = [
  hello(),
  hello({ role: 'server', instanceName: '', lastGeneration: 0, listenPort: 0 }),
  { type: 'welcome', generation: 0xfffffffe },
  { type: 'bye', reason: 1, text: 'already connected' },
  { type: 'bye', reason: 0, text: '' },
  { type: 'ping', seq: 7 },
  { type: 'pong', seq: 0xffffffff },
  { type: 'data', payload: Buffer.from('hello') },
  { type: 'data', payload: Buffer.alloc(0) },
  { type: 'streamOffer', token: randomBytes(16), kind: 1, dialBack: true, name: 'photos/🐈.jpg', meta: Buffer.from([1, 2, 3]) },
  { type: 'streamOffer', token: randomBytes(16), kind: 0, dialBack: false, name: '', meta: Buffer.alloc(0) },
  { type: 'streamReject', token: randomBytes(16), reason: 9 },
  { type: 'streamBind', version: 1, peerId: randomBytes(16), token: randomBytes(16) },
  { type: 'streamBound' },
  { type: 'extension', code: 0x41, body: Buffer.from('resource header') },
];

test('every message round-trips', () => {
  for (const m of roundTrips) {
    const back = decodeMessage(encodeMessageBuffer(m), opts);
    assert.deepEqual(back, m, m.type);
  }
});

test('DATA is encoded as header + the caller\'s payload, without copying it', () => {
  const payload = Buffer.from('x'.repeat(100));
  const parts = encodeMessage({ type: 'data', payload });
  assert.equal(parts.length, 2);
  assert.equal(parts[1], payload);
  assert.deepEqual(parts[0], Buffer.of(MessageType.DATA));
});

test('compact: a 100-byte message costs one header byte; HELLO fits in ~100 bytes', () => {
  assert.equal(encodeMessageBuffer({ type: 'data', payload: Buffer.alloc(100) }).length, 101);
  assert.ok(encodeMessageBuffer(hello({ displayName: 'a', instanceName: 'a' })).length < 64);
  assert.equal(encodeMessageBuffer({ type: 'ping', seq: 1 }).length, 5);
});

test('DATA over the local limit is ERR_MESSAGE_TOO_LARGE', () => {
  const big = encodeMessageBuffer({ type: 'data', payload: Buffer.alloc(1025) });
  assert.throws(() => decodeMessage(big, opts), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
  decodeMessage(encodeMessageBuffer({ type: 'data', payload: Buffer.alloc(1024) }), opts);
});

test('unknown types are reported as unknown (ignored by the receiver), extension range as extension', () => {
  assert.deepEqual(decodeMessage(Buffer.of(0x1f, 1, 2), opts), { type: 'unknown', code: 0x1f });
  assert.deepEqual(decodeMessage(Buffer.of(0x90), opts), { type: 'unknown', code: 0x90 });
  assert.equal(decodeMessage(Buffer.of(0x5f, 9), opts).type, 'extension');
});

function malformed(buf: Buffer, label: string): void {
  assert.throws(() => decodeMessage(buf, opts), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'), label);
}

test('malformed frames: empty, every truncation of every fixed-layout message', () => {
  malformed(Buffer.alloc(0), 'empty');
  for (const m of roundTrips) {
    if (m.type === 'data' || m.type === 'extension' || m.type === 'streamBound') continue;
    const full = encodeMessageBuffer(m);
    for (let len = 1; len < full.length; len++) malformed(full.subarray(0, len), `${m.type} cut at ${len}`);
  }
});

test('malformed frames: trailing bytes, bad lengths, bad UTF-8, control characters, zero values', () => {
  for (const m of roundTrips) {
    if (m.type === 'data' || m.type === 'extension') continue;
    malformed(Buffer.concat([encodeMessageBuffer(m), Buffer.of(0)]), `${m.type} + trailing byte`);
  }
  const h = encodeMessageBuffer(hello({ displayName: 'abc', instanceName: '' }));
  const nameLenAt = 1 + 1 + 1 + 16 + 16 + 4 + 4 + 2 + 4;
  assert.equal(h[nameLenAt], 3);
  // Length claims more than present.
  const long = Buffer.from(h);
  long[nameLenAt] = 60;
  malformed(long, 'name length beyond the frame');
  // Length over the limit (even if the bytes were present).
  const over = Buffer.concat([h.subarray(0, nameLenAt), Buffer.of(Limits.NAME_BYTES + 1), Buffer.alloc(Limits.NAME_BYTES + 1, 0x61), Buffer.of(0)]);
  malformed(over, 'name over 63 bytes');
  // Invalid UTF-8 and control characters.
  const bad = Buffer.from(h);
  bad[nameLenAt + 1] = 0xff;
  malformed(bad, 'invalid UTF-8');
  const ctl = Buffer.from(h);
  ctl[nameLenAt + 1] = 0x0a;
  malformed(ctl, 'newline in a name');
  // Empty display name.
  malformed(encodeHelloRaw({ name: '' }), 'empty display name');
  // Version 0, unknown role.
  const v0 = Buffer.from(h);
  v0[1] = 0;
  malformed(v0, 'version 0');
  const role = Buffer.from(h);
  role[2] = 9;
  malformed(role, 'unknown role');
  // WELCOME generation 0; STREAM_OFFER unknown flags; meta over its limit.
  malformed(Buffer.of(MessageType.WELCOME, 0, 0, 0, 0), 'generation 0');
  const offer = encodeMessageBuffer({ type: 'streamOffer', token: randomBytes(16), kind: 0, dialBack: false, name: 'a', meta: Buffer.alloc(0) });
  const flags = Buffer.from(offer);
  flags[18] = 0x80;
  malformed(flags, 'unknown offer flags');
  const meta = Buffer.concat([offer.subarray(0, offer.length - 2), Buffer.of(0x20, 0x00), Buffer.alloc(0x2000)]);
  malformed(meta, 'meta over 4096 bytes');
  // A HELLO bigger than its limit, even from a newer version.
  malformed(Buffer.concat([encodeMessageBuffer(hello({ version: 2 })), Buffer.alloc(Limits.HELLO_BYTES)]), 'oversized HELLO');
});

test('newer HELLO versions may append fields, which are skipped', () => {
  const h = hello({ version: 2 });
  const back = decodeMessage(Buffer.concat([encodeMessageBuffer(h), Buffer.from('future')]), opts);
  assert.deepEqual(back, h);
});

test('encoding refuses bad input from the caller, never from the wire', () => {
  assert.throws(() => encodeMessage(hello({ peerId: Buffer.alloc(3) })), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => encodeMessage(hello({ displayName: 'x'.repeat(64) })), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => encodeMessage({ type: 'extension', code: 0x10, body: Buffer.alloc(0) }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  // BYE text is sanitised and truncated rather than refused (it is sent on the way out).
  const bye = decodeMessage(encodeMessageBuffer({ type: 'bye', reason: 3, text: 'a\nb' + 'é'.repeat(300) }), opts);
  assert.equal(bye.type, 'bye');
  if (bye.type === 'bye') {
    assert.ok(Buffer.byteLength(bye.text) <= Limits.BYE_TEXT_BYTES);
    assert.ok(bye.text.startsWith('a b'));
  }
});

test('random garbage never throws anything but a PeerlinkError', () => {
  for (let i = 0; i < 5000; i++) {
    const buf = randomBytes(Math.floor(Math.random() * 80));
    if (buf.length > 0 && Math.random() < 0.5) buf[0] = 1 + Math.floor(Math.random() * 0x22);
    try {
      decodeMessage(buf, opts);
    } catch (e) {
      assert.ok(isPeerlinkError(e), String(e));
    }
  }
});

function encodeHelloRaw({ name }: { name: string }): Buffer {
  const h = encodeMessageBuffer(hello({ displayName: 'x', instanceName: '' }));
  const nameLenAt = 1 + 1 + 1 + 16 + 16 + 4 + 4 + 2 + 4;
  return Buffer.concat([h.subarray(0, nameLenAt), Buffer.of(Buffer.byteLength(name)), Buffer.from(name), Buffer.of(0)]);
}

test('DATA_BATCH: round-trips, keeps empty messages, checks every length against the data and the limit', () => {
  const m: SessionMessage = { type: 'dataBatch', payloads: [Buffer.from('one'), Buffer.alloc(0), Buffer.alloc(1024, 7)] };
  const wire = encodeMessageBuffer(m as Exclude<SessionMessage, { type: 'unknown' }>);
  assert.equal(wire[0], MessageType.DATA_BATCH);
  assert.equal(wire.length, 1 + 3 * 4 + 3 + 1024);
  assert.deepEqual(decodeMessage(wire, opts), m);
  // Cut inside a length or inside a payload: malformed (a cut at a message boundary is a shorter valid batch).
  malformed(wire.subarray(0, 3), 'cut inside the first length');
  malformed(wire.subarray(0, 6), 'cut inside the first payload');
  malformed(wire.subarray(0, wire.length - 1), 'cut inside the last payload');
  malformed(Buffer.of(MessageType.DATA_BATCH), 'empty batch');
  malformed(Buffer.concat([wire, Buffer.of(0, 0)]), 'trailing bytes shorter than a length');
  const tooBig = encodeMessageBuffer({ type: 'dataBatch', payloads: [Buffer.from('ok'), Buffer.alloc(1025)] });
  assert.throws(() => decodeMessage(tooBig, opts), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
  // A length claiming more than the frame holds is refused before any allocation.
  malformed(Buffer.of(MessageType.DATA_BATCH, 0, 0, 0, 9, 1, 2), 'length beyond the frame');
});
