/**
 * Resumed folders against raw peers (issue 15), written from raw sockets and hand-built frames
 * as docs/resources.md "Folders" lays them out:
 *
 * - a hostile sender that resumes a folder it left half-sent: its proof of the held files and
 *   its prefix claims are checked — a wrong proof, an offset the receiver never offered, a wrong
 *   prefix digest each fail the transfer and drop the partial folder — and an honest resume
 *   completes; nothing is ever written outside the download directory;
 * - a folder sent to a peer whose HELLO lacks the FOLDERS capability (an earlier version, which
 *   would never answer the offer) fails at once with ERR_RESOURCE_UNSUPPORTED, not after the
 *   whole acceptTimeout.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

async function sandbox(): Promise<{ root: string; inbox: string }> {
  const root = await mkdtemp(join(tmpdir(), 'pl-adv-foldres-'));
  dirs.push(root);
  const inbox = join(root, 'inbox');
  await mkdir(inbox);
  return { root, inbox };
}

const STREAM = { maxMessage: 60_000 };
const NOW = Date.now();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const A = Buffer.alloc(100, 0x61);
const B = randomBytes(6 * MiB);
const C = Buffer.from('the end\n\n\n');
const ENTRIES = [
  ['d', 'd', 0, 0o755, NOW],
  ['f', 'd/a.txt', A.length, 0o644, NOW],
  ['f', 'd/b.bin', B.length, 0o644, NOW],
  ['f', 'd/c.txt', C.length, 0o644, NOW],
];
const MANIFEST = Buffer.from(JSON.stringify({ e: ENTRIES, s: [] }), 'utf8');

function offer(s: RawStream): void {
  s.write(resourceFrame({ type: 'folder', v: 1, name: 'evil', files: 3, dirs: 1, size: A.length + B.length + C.length, manifest: MANIFEST.length, resume: 1 }));
  s.write(MANIFEST);
}

const accepted = (s: RawStream): Promise<Record<string, unknown>> => until(() => s.frames().find((f) => f.type === 'accept'), 15_000, 'accept');
const answered = (s: RawStream): Promise<Record<string, unknown>> => until(() => s.frames().find((f) => f.type !== 'accept'), 15_000, 'the victim answers');

async function partials(inbox: string): Promise<string[]> {
  return (await readdir(inbox)).filter((n) => n.startsWith('.peerlink-folder-partial-'));
}

/** Sends a.txt whole and 5 MiB of b.bin, waits until at least 4 MiB of it is on the victim's disk, and breaks the stream. */
async function halfSend(v: Victim, peer: Awaited<ReturnType<typeof rawPeer>>, inbox: string): Promise<void> {
  const failedBefore = v.events('resource-failed').length;
  const s = await openResourceStream(v, peer, STREAM);
  offer(s);
  const acc = await accepted(s);
  assert.deepEqual(acc.folder, { held: [] }, 'a fresh folder: nothing held');
  // The answer an accept with `folder` always gets: the proof of nothing, no prefix.
  s.write(resourceFrame({ type: 'folder-resume', held: sha(Buffer.alloc(0)), offset: 0, sha256: sha(Buffer.alloc(0)) }));
  s.write(A);
  s.write(resourceFrame({ type: 'end', sha256: sha(A) }));
  s.write(B.subarray(0, 5 * MiB));
  await until(
    async () => {
      const [p] = await partials(inbox);
      const st = p === undefined ? undefined : await lstat(join(inbox, p, 'd', 'b.bin')).catch(() => undefined);
      return (st?.size ?? 0) >= 4 * MiB;
    },
    15_000,
    'the prefix on disk',
    20,
  );
  s.socket.destroy();
  await until(() => v.events('resource-failed').length > failedBefore, 15_000, 'the victim notices');
  assert.equal((await partials(inbox)).length, 1, 'the interrupted folder is kept for resuming');
}

/** Offers the folder again and checks what the victim says it holds: a.txt, and a prefix of b.bin in 4 MiB blocks. */
async function reoffer(v: Victim, peer: Awaited<ReturnType<typeof rawPeer>>): Promise<{ s: RawStream; have: number }> {
  const s = await openResourceStream(v, peer, STREAM);
  offer(s);
  const acc = await accepted(s);
  const f = acc.folder as { held: number[][]; partial: { file: number; have: number; block: number; digests: string[] } };
  assert.deepEqual(f.held, [[0, 1]], 'a.txt is held');
  assert.equal(f.partial.file, 1);
  assert.equal(f.partial.block, 4 * MiB);
  const have = f.partial.have;
  assert.ok(have >= 4 * MiB && have <= 5 * MiB, `prefix of ${have} bytes`);
  assert.deepEqual(f.partial.digests, [sha(B.subarray(0, 4 * MiB)), sha(B.subarray(4 * MiB, have))]);
  return { s, have };
}

const PROOF = sha(Buffer.from(`${sha(A)}\n`));

test('folder resume (a): a sender that lies about the held files or the prefix fails and the partial folder is dropped; an honest resume completes; nothing outside the directory', { timeout: 180_000 }, async () => {
  const box = await sandbox();
  const v = await startVictim({ acceptResources: true, resources: { directory: box.inbox } });
  const peer = await rawPeer(v);

  const lies: Array<{ what: string; frame: Record<string, unknown>; code: string }> = [
    { what: 'a wrong proof of the held files', frame: { type: 'folder-resume', held: 'f'.repeat(64), offset: 0, sha256: sha(Buffer.alloc(0)) }, code: 'ERR_RESOURCE_VERIFY' },
    { what: 'an offset never offered', frame: { type: 'folder-resume', held: PROOF, offset: 3 * MiB, sha256: sha(B.subarray(0, 3 * MiB)) }, code: 'ERR_PROTOCOL' },
    { what: 'a wrong digest of the prefix', frame: { type: 'folder-resume', held: PROOF, offset: 4 * MiB, sha256: 'e'.repeat(64) }, code: 'ERR_RESOURCE_VERIFY' },
    { what: 'a malformed answer', frame: { type: 'folder-resume', held: PROOF, offset: -1, sha256: 'x' }, code: 'ERR_PROTOCOL' },
    { what: 'a file answer instead', frame: { type: 'resume', offset: 0, sha256: sha(Buffer.alloc(0)) }, code: 'ERR_PROTOCOL' },
  ];
  for (const lie of lies) {
    await halfSend(v, peer, box.inbox);
    const { s } = await reoffer(v, peer);
    s.write(resourceFrame(lie.frame));
    const a = await answered(s);
    assert.equal(a.type, 'error', `${lie.what}: ${JSON.stringify(a)}`);
    assert.equal(a.code, lie.code, `${lie.what}: ${JSON.stringify(a)}`);
    s.socket.destroy();
    await until(async () => (await readdir(box.inbox)).length === 0, 10_000, `${lie.what}: the partial folder is dropped`);
    assert.deepEqual(await readdir(box.root), ['inbox'], `${lie.what}: nothing next to the download directory`);
  }

  // Honest: a.txt is not sent again, b.bin continues at 4 MiB, c.txt follows.
  await halfSend(v, peer, box.inbox);
  const { s } = await reoffer(v, peer);
  s.write(resourceFrame({ type: 'folder-resume', held: PROOF, offset: 4 * MiB, sha256: sha(B.subarray(0, 4 * MiB)) }));
  s.write(B.subarray(4 * MiB));
  s.write(resourceFrame({ type: 'end', sha256: sha(B) }));
  s.write(C);
  s.write(resourceFrame({ type: 'end', sha256: sha(C) }));
  const done = await answered(s);
  assert.equal(done.type, 'folder-done', JSON.stringify(done));
  assert.ok((await readFile(join(box.inbox, 'evil', 'd', 'a.txt'))).equals(A));
  assert.ok((await readFile(join(box.inbox, 'evil', 'd', 'b.bin'))).equals(B));
  assert.ok((await readFile(join(box.inbox, 'evil', 'd', 'c.txt'))).equals(C));
  assert.deepEqual(await readdir(box.inbox), ['evil']);
  assert.deepEqual((await readdir(join(box.inbox, 'evil', 'd'))).sort(), ['a.txt', 'b.bin', 'c.txt'], 'no journal in the folder');
  assert.deepEqual(await readdir(box.root), ['inbox']);
});

test('folder resume (b): a folder to a peer without the FOLDERS capability (an earlier version) fails at once with ERR_RESOURCE_UNSUPPORTED', { timeout: 60_000 }, async () => {
  const box = await sandbox();
  const src = join(box.root, 'src');
  await mkdir(src);
  await writeFile(join(src, 'x.txt'), 'x');
  const v = await startVictim({ resources: { directory: box.inbox } });
  // HELLO capabilities: streams and resources only, as a receiver that predates folders.
  await rawPeer(v, { capabilities: 0b11 });
  const id = await until(() => v.events('peer').find((e) => e.state === 'connected')?.peer as string | undefined, 10_000, 'the raw peer is connected');
  v.proc.writeLine(`send-resource ${id} ${JSON.stringify({ path: src, name: 'src', acceptTimeout: 120_000 })}`);
  const r = await until(() => v.events('resource-send-failed')[0] ?? v.events('resource-sent')[0], 20_000, 'the send fails at once (not after the 120 s acceptTimeout)');
  assert.equal(r.code, 'ERR_RESOURCE_UNSUPPORTED', JSON.stringify(r));
});
