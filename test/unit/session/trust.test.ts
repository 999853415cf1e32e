/**
 * The trust parts without a network: the known-peers store (bounds, forget by id or name, a
 * damaged file), profiles held by one process, the code and the commitment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { KnownPeers } from '../../../src/session/trust/known-peers.js';
import { lockFreeProfile, lockProfile, profileDir, profileHolder, tryLockProfile } from '../../../src/session/trust/profile.js';
import { commitmentOf, verificationCode } from '../../../src/session/trust/verify-code.js';
import { SessionIdentity, peerIdBytesOfSpki } from '../../../src/session/trust/identity.js';
import { isPeerlinkError } from '../../../src/errors.js';

const id = (n: number): string => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

test('known peers: check, trust, seen, forget by id (any case) or name; bounded, least recently seen dropped', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-known-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const k = new KnownPeers(join(dir, 'known-peers.json'), 3);
  assert.equal(k.check(id(1), 'sha256/a'), 'unknown');
  k.trust(id(1), 'sha256/a', 'One', new Date(1000));
  k.trust(id(2), 'sha256/b', 'Two', new Date(2000));
  k.trust(id(3), 'sha256/c', 'Three', new Date(3000));
  assert.equal(k.check(id(1), 'sha256/a'), 'known');
  assert.equal(k.check(id(1), 'sha256/x'), 'changed');
  k.seen(id(1), 'One again', new Date(4000));
  k.trust(id(4), 'sha256/d', 'Four', new Date(5000));
  assert.deepEqual(k.list().map((e) => e.displayName).sort(), ['Four', 'One again', 'Three'], 'Two was the least recently seen');
  assert.equal(new KnownPeers(join(dir, 'known-peers.json')).list().length, 3, 'kept in the file');
  assert.deepEqual(k.forget(id(3).toUpperCase()).map((e) => e.displayName), ['Three']);
  assert.deepEqual(k.forget('Four').map((e) => e.id), [id(4)]);
  assert.deepEqual(k.forget('nobody'), []);
  assert.equal(k.list().length, 1);
  const text = await readFile(join(dir, 'known-peers.json'), 'utf8');
  assert.equal((JSON.parse(text) as { version: number }).version, 1);
});

test('known peers: a damaged or foreign file is read as nobody known, never thrown', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-known-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'known-peers.json');
  for (const text of ['not json', '{"peers": 7}', JSON.stringify({ peers: [{ id: 'x', fingerprint: 'y' }, null] })]) {
    await writeFile(file, text);
    assert.deepEqual(new KnownPeers(file).list(), []);
  }
  await writeFile(file, 'x'.repeat(1024 * 1024 + 1));
  assert.equal(new KnownPeers(file).check(id(1), 'sha256/a'), 'unknown');
});

test('profiles: one holder at a time; the next free one is taken; a stale lock is taken over', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'pl-prof-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const first = lockFreeProfile(base);
  assert.equal(first.dir, profileDir(base, 1));
  assert.equal(profileHolder(first.dir), process.pid);
  assert.equal(tryLockProfile(first.dir), undefined);
  assert.throws(() => lockProfile(first.dir), (e: unknown) => isPeerlinkError(e, 'ERR_IDENTITY_IN_USE'));
  const second = lockFreeProfile(base);
  assert.equal(second.dir, profileDir(base, 2));
  first.release();
  assert.equal(profileHolder(first.dir), undefined);
  // A lock left by a process that is gone (pid 2^22+1 is above Linux's pid_max default range).
  await writeFile(join(profileDir(base, 1), 'lock'), '4194305\n');
  const again = lockFreeProfile(base);
  assert.equal(again.dir, profileDir(base, 1));
  again.release();
  second.release();
});

test('the code: six digits, the same from both sides, changed by any input; the commitment binds the nonce', async () => {
  const x = { id: randomBytes(16), spki: randomBytes(91), nonce: randomBytes(32) };
  const y = { id: randomBytes(16), spki: randomBytes(91), nonce: randomBytes(32) };
  const exporter = randomBytes(32);
  const c = verificationCode({ exporter, local: x, remote: y });
  assert.match(c, /^\d{6}$/);
  assert.equal(verificationCode({ exporter, local: y, remote: x }), c);
  const others = [
    verificationCode({ exporter: randomBytes(32), local: x, remote: y }),
    verificationCode({ exporter, local: { ...x, nonce: randomBytes(32) }, remote: y }),
    verificationCode({ exporter, local: { ...x, spki: randomBytes(91) }, remote: y }),
  ];
  assert.ok(others.filter((o) => o === c).length <= 1);
  assert.notDeepEqual(commitmentOf(x.nonce), commitmentOf(y.nonce));
  assert.equal(commitmentOf(x.nonce).length, 32);
});

test('an identity: the id is the first 128 bits of SHA-256 of its SPKI; a directory keeps it; a certificate for another key is refused', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-ident-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = SessionIdentity.inDirectory(dir);
  assert.deepEqual(a.idBytes, peerIdBytesOfSpki(a.spki));
  const cert = await a.ensureCertificate('A');
  const again = SessionIdentity.inDirectory(dir);
  assert.deepEqual(again.idBytes, a.idBytes);
  assert.equal(again.certPem, cert);
  const other = SessionIdentity.ephemeral();
  assert.throws(() => SessionIdentity.fromPem({ cert, key: other.keyPem }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.deepEqual(SessionIdentity.fromPem({ cert, key: a.keyPem }).idBytes, a.idBytes);
});
