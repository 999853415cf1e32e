import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerID, comparePeerIdBytes, peerKey } from '../../../src/session/peer-id.js';
import { isPeerlinkError } from '../../../src/errors.js';

test('generate makes RFC 4122 version-4 UUIDs, lower-case, unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = PeerID.generate('Alice');
    assert.match(p.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(p.id);
  }
  assert.equal(seen.size, 200);
});

test('ids compare as 128-bit numbers, whatever the letter case of their text', () => {
  const upper = PeerID.fromString('A0000000-0000-4000-8000-000000000000', 'apple');
  const lower = PeerID.fromString('a0000000-0000-4000-8000-000000000000', 'node');
  assert.equal(upper.compare(lower), 0);
  assert.ok(upper.equals(lower));
  assert.equal(upper.id, lower.id, 'canonical text is lower-case');
  // '9' < 'a' as text and as number; but 'B' < 'a' as text while 0xB > 0xA as number:
  const b = PeerID.fromString('B0000000-0000-4000-8000-000000000000', 'b');
  assert.equal(b.compare(lower), 1, 'string comparison would say B < a');
  assert.ok('B0000000' < 'a0000000');
  const small = PeerID.fromString('00000000-0000-0000-0000-000000000001', 's');
  const big = PeerID.fromString('ffffffff-ffff-ffff-ffff-fffffffffffe', 'b');
  assert.equal(small.compare(big), -1);
  assert.equal(big.compare(small), 1);
  // Differences in the lowest byte only.
  assert.equal(comparePeerIdBytes(Buffer.alloc(16, 0), Buffer.concat([Buffer.alloc(15), Buffer.of(1)])), -1);
});

test('fromBytes round-trips; peerKey is the canonical text', () => {
  const p = PeerID.generate('x');
  const q = PeerID.fromBytes(p.toBytes(), 'y');
  assert.ok(p.equals(q));
  assert.equal(peerKey(p.toBytes()), p.id);
  assert.equal(peerKey(q), p.id);
  assert.throws(() => PeerID.fromBytes(Buffer.alloc(15), 'x'), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
});

test('display names are validated: empty, control characters, more than 63 UTF-8 bytes', () => {
  for (const bad of ['', 'a\nb', 'x\u0000', 'é'.repeat(32)]) {
    assert.throws(() => PeerID.generate(bad), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
  }
  assert.equal(PeerID.generate('é'.repeat(31)).displayName.length, 31);
  assert.throws(() => PeerID.fromString('not-a-uuid', 'x'), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
});

test('loadOrCreate persists the id (mode 0600) and keeps it across loads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'peerid-'));
  try {
    const file = join(dir, 'sub', 'peer.json');
    await assert.rejects(PeerID.loadOrCreate(file), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    const a = await PeerID.loadOrCreate(file, 'Alice');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const b = await PeerID.loadOrCreate(file);
    assert.ok(a.equals(b));
    assert.equal(b.displayName, 'Alice');
    const c = await PeerID.loadOrCreate(file, 'Alice 2');
    assert.ok(c.equals(a));
    assert.equal(JSON.parse(await readFile(file, 'utf8')).displayName, 'Alice 2');
    await writeFile(file, 'garbage');
    await assert.rejects(PeerID.loadOrCreate(file), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
