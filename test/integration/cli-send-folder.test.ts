// `peerlink send DIR` → `peerlink receive` between two namespace hosts this test creates: one
// offer, the tree under the receiver's directory, symlinks left out and reported on both sides,
// a second send arriving as "NAME (1)".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLab, type Lab } from './../harness/netns.js';
import { killAllTracked, waitForJson, jsonLines } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let work = '';
const KEY = randomBytes(32).toString('hex');
const env = (): NodeJS.ProcessEnv => ({ ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1' });

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-cli-fold-'));
  if (skip) return;
  lab = await createLab({ hosts: 2, tag: 'fold' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

test('peerlink send DIR: the folder arrives whole across two hosts, symlinks reported on both sides, a second send as "NAME (1)"', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = `plfold${process.pid % 10000}`;
  const src = join(work, 'Fotos 2024');
  await mkdir(join(src, 'Ästhetik', 'leer'), { recursive: true });
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 200; i++) files.set(`Ästhetik/p${i}.jpg`, randomBytes(1024 + i * 13));
  files.set('readme.txt', Buffer.from('hello\n'));
  for (const [rel, data] of files) await writeFile(join(src, ...rel.split('/')), data);
  await chmod(join(src, 'readme.txt'), 0o2751);
  await symlink('/etc/shadow', join(src, 'shadow'));
  const dir = join(work, 'inbox');
  const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--json', '--yes'], { env: env() });
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);

  const r = await lab.exec(1, process.execPath, [PEERLINK_BIN, 'send', src, '--service', svc, '--json', '--timeout', '5'], { env: env(), check: false, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  assert.ok(lines.some((e) => e.event === 'sent' && e.file === 'Fotos 2024'), r.stdout);
  const note = lines.find((e) => e.event === 'folder');
  assert.deepEqual(note?.skipped, [{ path: 'shadow', why: 'symlink' }]);
  const offer = await waitForJson(recv, (e) => e.event === 'offer', 30_000);
  assert.equal((offer.files as unknown[]).length, files.size, 'one offer listing every file');
  const got = await waitForJson(recv, (e) => e.event === 'folder', 30_000);
  assert.deepEqual(got.skipped, [{ path: 'shadow', why: 'symlink' }]);
  for (const [rel, data] of files) assert.ok((await readFile(join(dir, 'Fotos 2024', ...rel.split('/')))).equals(data), rel);
  assert.deepEqual(await readdir(join(dir, 'Fotos 2024', 'Ästhetik', 'leer')), []);
  assert.equal((await stat(join(dir, 'Fotos 2024', 'readme.txt'))).mode & 0o7777, 0o751, 'setgid dropped');

  const again = await lab.exec(1, process.execPath, [PEERLINK_BIN, 'send', src, '--service', svc, '--timeout', '5'], { env: env(), check: false, timeoutMs: 120_000 });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /left out \(symlink, not followed\): "shadow"/);
  await waitForJson(recv, (e) => e.event === 'received' && e.savedAs === 'Fotos 2024 (1)', 30_000);
  assert.deepEqual((await readdir(dir)).sort(), ['Fotos 2024', 'Fotos 2024 (1)']);
  recv.signal('SIGINT');
  assert.equal((await recv.exited).code, 0, recv.tail());
});
