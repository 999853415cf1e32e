/**
 * Hostile folder manifests (issue 15): an attacker built from raw sockets and hand-written frames
 * — STREAM_OFFER (kind 1) on its control connection, a stream connection with STREAM_BIND, then
 * the folder offer as docs/resources.md "Folders" lays it out: a FOLDER control frame (u32 BE
 * length + JSON), the manifest's raw bytes, then (after the accept) each file's bytes and its
 * END trailer. Every manifest here is refused or bounded, and nothing is written outside (or,
 * for a refused one, inside) the download directory, which sits alone in a sandbox.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { cleanup, rawPeer, startVictim, MiB } from './harness.js';
import { until } from '../harness/proc.js';
import { openResourceStream, resourceFrame, type RawStream } from './resource-attacker.js';

const dirs: string[] = [];
after(async () => {
  await cleanup();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A sandbox holding only the download directory `inbox`. */
async function sandbox(): Promise<{ root: string; inbox: string }> {
  const root = await mkdtemp(join(tmpdir(), 'pl-adv-fold-'));
  dirs.push(root);
  const inbox = join(root, 'inbox');
  await mkdir(inbox);
  return { root, inbox };
}

// Stream messages are at most 64 KiB of payload: larger writes are split.
const STREAM = { maxMessage: 60_000 };

type Entry = ['f' | 'd', string, number, number, number];

/** Sends a folder offer: header (counts computed from `entries` unless overridden), manifest, and — without waiting — each file's body and trailer. */
function offerFolder(s: RawStream, entries: Entry[], over: Record<string, unknown> = {}, bodies = true): void {
  const manifest = Buffer.from(JSON.stringify({ e: entries, s: [] }), 'utf8');
  const files = entries.filter((e) => e[0] === 'f');
  s.write(resourceFrame({ type: 'folder', v: 1, name: 'evil', files: files.length, dirs: entries.length - files.length, size: files.reduce((n, e) => n + e[2], 0), manifest: manifest.length, ...over }));
  s.write(manifest);
  if (!bodies) return;
  for (const f of files) {
    const body = Buffer.alloc(f[2], 0x41);
    s.write(body);
    s.write(resourceFrame({ type: 'end', sha256: createHash('sha256').update(body).digest('hex') }));
  }
}

const answer = (s: RawStream, what = 'the victim answers the folder'): Promise<Record<string, unknown>> => until(() => s.frames().find((f) => f.type !== 'accept'), 15_000, what);

async function nothingWritten(box: { root: string; inbox: string }): Promise<void> {
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(await readdir(box.root), ['inbox'], 'nothing next to the download directory');
  assert.deepEqual(await readdir(box.inbox), [], 'nothing (not even a staging directory) in it');
}

const NOW = Date.now();

test('folders (a): paths that escape or hide — "../", absolute, "a/../..", backslashes, invisible and control characters, hidden names — are refused before anything is written', { timeout: 120_000 }, async () => {
  const box = await sandbox();
  const v = await startVictim({ acceptResources: true, resources: { directory: box.inbox } });
  const peer = await rawPeer(v);
  const hostile: Entry[][] = [
    [['f', '../escape.txt', 5, 0o644, NOW]],
    [['f', '/tmp/absolute.txt', 5, 0o644, NOW]],
    [['d', 'a', 0, 0o755, NOW], ['f', 'a/../../up.txt', 5, 0o644, NOW]],
    [['f', '..\\win.txt', 5, 0o644, NOW]],
    [['f', 'zero\u200bwidth.txt', 5, 0o644, NOW]],
    [['f', 'bell\u0007.txt', 5, 0o644, NOW]],
    [['f', 'rtl\u202etxt.exe', 5, 0o644, NOW]],
    [['f', '.bashrc', 5, 0o644, NOW]],
    [['f', 'a//b.txt', 5, 0o644, NOW]],
    [['f', '', 5, 0o644, NOW]],
  ];
  for (const entries of hostile) {
    const s = await openResourceStream(v, peer, STREAM);
    offerFolder(s, entries);
    const a = await answer(s);
    assert.equal(a.type, 'reject', `${JSON.stringify(entries)} → ${JSON.stringify(a)}`);
    assert.equal(a.code, 'ERR_RESOURCE_NAME', JSON.stringify(entries));
    s.socket.destroy();
  }
  // A hostile top name too.
  const s = await openResourceStream(v, peer, STREAM);
  offerFolder(s, [['f', 'ok.txt', 5, 0o644, NOW]], { name: '..' });
  assert.equal((await answer(s)).code, 'ERR_RESOURCE_NAME');
  await nothingWritten(box);
});

test('folders (b): manifests that lie — counts, total, a file before its directory, a duplicate — and bodies longer than listed are refused; nothing is kept', { timeout: 120_000 }, async () => {
  const box = await sandbox();
  const v = await startVictim({ acceptResources: true, resources: { directory: box.inbox } });
  const peer = await rawPeer(v);
  const ok: Entry[] = [['d', 'd', 0, 0o755, NOW], ['f', 'd/x.txt', 5, 0o644, NOW]];
  const lies: Array<{ entries: Entry[]; over?: Record<string, unknown> }> = [
    { entries: ok, over: { files: 2 } },
    { entries: ok, over: { size: 4 } },
    { entries: ok, over: { dirs: 0 } },
    { entries: [['f', 'd/x.txt', 5, 0o644, NOW]] },
    { entries: [['f', 'x.txt', 5, 0o644, NOW], ['f', 'X.TXT', 5, 0o644, NOW]] },
    { entries: [['f', 'x.txt', -1, 0o644, NOW]], over: { size: 0 } },
  ];
  for (const { entries, over } of lies) {
    const s = await openResourceStream(v, peer, STREAM);
    offerFolder(s, entries, over, entries.every((e) => e[2] >= 0));
    const a = await answer(s, JSON.stringify({ entries, over }));
    assert.equal(a.type, 'reject', `${JSON.stringify({ entries, over })} → ${JSON.stringify(a)}`);
    assert.ok(a.code === 'ERR_PROTOCOL' || a.code === 'ERR_RESOURCE_NAME', JSON.stringify(a));
    s.socket.destroy();
  }
  // Listed as 5 bytes, sent as 64 KiB: the bytes after the fifth are not a trailer.
  const s = await openResourceStream(v, peer, STREAM);
  offerFolder(s, [['f', 'long.txt', 5, 0o644, NOW]], {}, false);
  await until(() => s.frames().find((f) => f.type === 'accept'), 10_000, 'accept');
  s.write(Buffer.alloc(64 * 1024, 0x41));
  const a = await answer(s);
  assert.equal(a.type, 'error', JSON.stringify(a));
  await nothingWritten(box);
});

test('folders (c): 10^6 entries are refused by the folderEntries budget before the manifest is read (counted); a manifest over folderManifestBytes likewise; one that hides more entries than it declares is refused while parsing', { timeout: 120_000 }, async () => {
  const box = await sandbox();
  const v = await startVictim({ acceptResources: true, resources: { directory: box.inbox } });
  const peer = await rawPeer(v);
  // Declared: a million files. Nothing of the manifest is sent: the header alone is refused.
  const s1 = await openResourceStream(v, peer, STREAM);
  s1.write(resourceFrame({ type: 'folder', v: 1, name: 'million', files: 1_000_000, dirs: 0, size: 1_000_000, manifest: 1000 }));
  const a1 = await answer(s1);
  assert.equal(a1.code, 'ERR_RESOURCE_QUOTA', JSON.stringify(a1));
  // Declared: a 1 GiB manifest.
  const s2 = await openResourceStream(v, peer, STREAM);
  s2.write(resourceFrame({ type: 'folder', v: 1, name: 'huge', files: 1, dirs: 0, size: 1, manifest: 1024 * MiB }));
  const a2 = await answer(s2);
  assert.equal(a2.code, 'ERR_RESOURCE_QUOTA', JSON.stringify(a2));
  // Declared: one file; the manifest (under the byte budget) lists 150 000.
  const many: Entry[] = Array.from({ length: 150_000 }, (_, i) => ['f', `f${i}`, 0, 0o644, NOW]);
  const s3 = await openResourceStream(v, peer, STREAM);
  offerFolder(s3, many, { files: 1, size: 0 }, false);
  const a3 = await answer(s3);
  assert.equal(a3.type, 'reject', JSON.stringify(a3));
  assert.equal(a3.code, 'ERR_PROTOCOL');
  const c = await v.cost();
  assert.ok((c.stats.budgets.folderEntries ?? 0) >= 2, JSON.stringify(c.stats.budgets));
  assert.equal(c.stats.budgets.folderManifestBytes, 1);
  await nothingWritten(box);
});

test('folders (d): a legitimate folder from the same raw sender still arrives, in place, with its tree', { timeout: 60_000 }, async () => {
  const box = await sandbox();
  const v = await startVictim({ acceptResources: true, resources: { directory: box.inbox } });
  const peer = await rawPeer(v);
  const s = await openResourceStream(v, peer, STREAM);
  offerFolder(s, [['d', 'sub', 0, 0o755, NOW], ['d', 'sub/empty', 0, 0o755, NOW], ['f', 'sub/x.txt', 5, 0o4755, NOW]]);
  const a = await answer(s);
  assert.equal(a.type, 'folder-done', JSON.stringify(a));
  assert.deepEqual(await readdir(box.root), ['inbox']);
  assert.deepEqual(await readdir(box.inbox), ['evil']);
  assert.deepEqual((await readdir(join(box.inbox, 'evil', 'sub'))).sort(), ['empty', 'x.txt']);
});
