/**
 * A sender that lies in the resume exchange (docs/resources.md "Resuming", docs/security.md
 * "Resources"): built from raw sockets and hand-written frames — STREAM_OFFER (kind 1) on its
 * control connection, a stream connection with STREAM_BIND, then resource frames as
 * docs/resources.md lays them out (u32 big-endian length + UTF-8 JSON; the body raw), each
 * carried in the stream's framed messages. It first leaves the victim a partial file (an
 * interrupted transfer of its own), then comes back with an offset past what the victim
 * holds, a forged prefix digest, the digest of another file's prefix, or a true prefix and a
 * false whole-file digest. The victim must never keep bytes it did not verify: it fails the
 * transfer, drops the partial file, and places nothing.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { cleanup, rawPeer, startVictim, MiB, type Victim } from './harness.js';
import { until } from '../harness/proc.js';
import { openResourceStream, resourceFrame, type RawStream } from './resource-attacker.js';

const dirs: string[] = [];
after(async () => {
  await cleanup();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

// Stream bytes in framed messages of at most 256 KiB (the victim's stream chunk); an empty write sends none.
const STREAM = { maxMessage: 256 * 1024, skipEmpty: true };

const NAME = 'photos.tar';
const SIZE = 12 * MiB;
const HEADER = { type: 'resource', v: 1, name: NAME, size: SIZE, sha256: null, resume: 1 };

const partials = (files: string[]): string[] => files.filter((f) => f.startsWith('.peerlink-partial-'));

/** A victim holding a partial file of NAME: the first 9 MiB of `file`, from a transfer the attacker cut (a reset). */
async function victimWithPartial(file: Buffer, transferIdleTimeout?: number): Promise<{ v: Victim; peer: Awaited<ReturnType<typeof rawPeer>> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-adv-resume-'));
  dirs.push(dir);
  const v = await startVictim({ acceptResources: true, resources: { directory: dir }, ...(transferIdleTimeout ? { budgets: { transferIdleTimeout } } : {}) });
  const peer = await rawPeer(v);
  const s = await openResourceStream(v, peer, STREAM);
  s.write(resourceFrame(HEADER));
  const accept = await until(() => s.frames()[0], 10_000, 'accept');
  assert.equal(accept.type, 'accept');
  assert.deepEqual(accept.resume, { have: 0, block: 4 * MiB, digests: [] }, 'the victim can resume and holds nothing yet');
  s.write(resourceFrame({ type: 'resume', offset: 0, sha256: sha(Buffer.alloc(0)) }));
  s.write(file.subarray(0, 9 * MiB));
  await until(async () => (await partialBytes(dir)) >= 8 * MiB, 10_000, 'the bytes written');
  s.socket.resetAndDestroy();
  await until(async () => partials((await v.cost()).files).length === 2, 10_000, 'the partial file kept');
  return { v, peer };
}

/** Bytes in the victim's partial file so far (the directory is on this host). */
async function partialBytes(dir: string): Promise<number> {
  const part = (await readdir(dir)).find((f) => f.startsWith('.peerlink-partial-') && f.endsWith('.part'));
  return part ? (await stat(join(dir, part))).size : 0;
}

/** Comes back for the partial: returns the stream and the victim's resume offer, after checking it is true. */
async function comeBack(v: Victim, peer: Awaited<ReturnType<typeof rawPeer>>, file: Buffer): Promise<{ s: RawStream; have: number }> {
  const s = await openResourceStream(v, peer, STREAM);
  s.write(resourceFrame(HEADER));
  const accept = await until(() => s.frames()[0], 10_000, 'accept');
  assert.equal(accept.type, 'accept');
  const offer = accept.resume as { have: number; block: number; digests: string[] };
  assert.ok(offer.have >= 8 * MiB && offer.have <= 9 * MiB, `holds ${offer.have}`);
  assert.equal(offer.block, 4 * MiB);
  assert.equal(offer.digests[0], sha(file.subarray(0, 4 * MiB)), 'the digests are of what the victim holds');
  return { s, have: offer.have };
}

async function failedWith(v: Victim, s: RawStream, code: string): Promise<void> {
  const answer = await until(() => s.frames().slice(1).find((f) => f.type === 'error' || f.type === 'done'), 15_000, 'the answer');
  assert.equal(answer.type, 'error', JSON.stringify(answer));
  assert.equal(answer.code, code);
  // Nothing placed, and the partial file it could not trust is gone.
  await until(async () => partials((await v.cost()).files).length === 0, 10_000, 'the partial file dropped');
  assert.deepEqual((await v.cost()).files, []);
}

test('resume: an offset past what the receiver holds (and past the end) is refused; nothing is kept', { timeout: 60_000 }, async () => {
  const file = randomBytes(SIZE);
  for (const lie of ['past-have', 'past-end', 'mid-block']) {
    const { v, peer } = await victimWithPartial(file);
    const { s, have } = await comeBack(v, peer, file);
    const offset = lie === 'past-have' ? have + 4 * MiB : lie === 'past-end' ? SIZE + 1 : 4 * MiB + 1;
    s.write(resourceFrame({ type: 'resume', offset, sha256: sha(file.subarray(0, Math.min(offset, SIZE))) }));
    s.write(file.subarray(Math.min(offset, SIZE)));
    s.write(resourceFrame({ type: 'end', sha256: sha(file) }));
    await failedWith(v, s, 'ERR_PROTOCOL');
  }
});

test('resume: a forged prefix digest, or the digest of another file, is refused; nothing is kept', { timeout: 60_000 }, async () => {
  const file = randomBytes(SIZE);
  const other = randomBytes(SIZE);
  for (const lie of ['forged', 'other-file']) {
    const { v, peer } = await victimWithPartial(file);
    const { s, have } = await comeBack(v, peer, file);
    // The attacker continues with another file's bytes and claims its prefix is what the victim has.
    const sha256 = lie === 'forged' ? randomBytes(32).toString('hex') : sha(other.subarray(0, have));
    s.write(resourceFrame({ type: 'resume', offset: have, sha256 }));
    s.write(other.subarray(have));
    const spliced = Buffer.concat([file.subarray(0, have), other.subarray(have)]);
    s.write(resourceFrame({ type: 'end', sha256: sha(spliced) }));
    await failedWith(v, s, 'ERR_RESOURCE_VERIFY');
  }
});

test('resume: digests copied back without the bytes cannot produce the whole-file digest; nothing is kept', { timeout: 60_000 }, async () => {
  const file = randomBytes(SIZE);
  const { v, peer } = await victimWithPartial(file);
  const { s } = await comeBack(v, peer, file);
  // It resumes at a boundary with the right prefix digest (it sent those bytes itself), then
  // sends a tail and a trailer digest for a file the victim's bytes do not make up.
  s.write(resourceFrame({ type: 'resume', offset: 8 * MiB, sha256: sha(file.subarray(0, 8 * MiB)) }));
  const tail = randomBytes(SIZE - 8 * MiB);
  s.write(tail);
  s.write(resourceFrame({ type: 'end', sha256: sha(Buffer.concat([randomBytes(8 * MiB), tail])) }));
  await failedWith(v, s, 'ERR_RESOURCE_VERIFY');
});

test('resume: a sender that never answers the resume offer is dropped after a bounded time; the partial file stays', { timeout: 60_000 }, async () => {
  const file = randomBytes(SIZE);
  const { v, peer } = await victimWithPartial(file, 1500);
  const { s, have } = await comeBack(v, peer, file);
  const started = Date.now();
  // Silence: the victim allows transferIdleTimeout plus 1 s per 50 MB it holds for the answer.
  const answer = await until(() => s.frames().slice(1).find((f) => f.type === 'error'), 20_000, 'the timeout');
  assert.equal(answer.code, 'ERR_TIMEOUT');
  const waited = Date.now() - started;
  assert.ok(waited >= 1400 && waited < 15_000, `waited ${waited} ms for ${have} bytes held`);
  assert.equal(partials((await v.cost()).files).length, 2, 'nothing was proved wrong: the partial file is kept');
});
