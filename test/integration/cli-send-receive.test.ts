// `peerlink send` / `receive` / `chat` end to end: the real bin, in network namespaces this
// test creates (two hosts on a bridge, and a loopback-only namespace for --interface lo).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, run, waitForJson, waitForLine, type TrackedProcess, jsonLines } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let loNs = '';
let work = '';
const KEY = randomBytes(32).toString('hex');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const env = (key = KEY): NodeJS.ProcessEnv => ({ ...process.env, PEERLINK_PSK: key, NO_COLOR: '1' });
let serviceCounter = 0;
const service = (): string => `plres${process.pid % 10000}x${++serviceCounter}`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-cli-res-'));
  if (skip) return;
  lab = await createLab({ hosts: 2, tag: 'res' });
  loNs = await lab.addLoopbackNamespace('reslo');
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

function receiver(where: number | string, svc: string, dir: string, extra: string[] = [], key = KEY): TrackedProcess {
  return lab!.spawnNode(where, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--json', '--yes', ...extra], { env: env(key) });
}

async function sendCmd(where: number | string, args: string[], key = KEY): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await lab!.exec(where, process.execPath, [PEERLINK_BIN, 'send', ...args], { env: env(key), check: false, timeoutMs: 120_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

test('send → receive across two hosts: verified file, clash suffix, SIGINT exits 0', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'inbox1');
  const data = randomBytes(3 * 1024 * 1024 + 11);
  const file = join(work, 'photo one.jpg');
  await writeFile(file, data);
  const recv = receiver(2, svc, dir);
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);

  const first = await sendCmd(1, [file, '--service', svc, '--json', '--timeout', '5']);
  assert.equal(first.code, 0, first.stderr);
  const sent = jsonLines(first.stdout).find((e) => e.event === 'sent');
  assert.ok(sent, first.stdout);
  assert.equal(sent.sha256, sha(data));
  assert.equal(sent.file, 'photo one.jpg');
  const got = await waitForJson(recv, (e) => e.event === 'received', 30_000);
  assert.equal(got.sha256, sha(data));
  assert.deepEqual(await readFile(join(dir, 'photo one.jpg')), data);

  const second = await sendCmd(1, [file, '--service', svc, '--timeout', '5']);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, new RegExp(`photo one\\.jpg\\t.+\\t${data.length}\\tsha256 ${sha(data)}`));
  await waitForJson(recv, (e) => e.event === 'received' && e.savedAs === 'photo one (1).jpg', 30_000);
  assert.deepEqual((await readdir(dir)).sort(), ['photo one (1).jpg', 'photo one.jpg']);

  recv.signal('SIGINT');
  const exit = await recv.exited;
  assert.equal(exit.code, 0, recv.tail());
});

test('without --to every receiver found gets every file', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dirs = [join(work, 'multi-1'), join(work, 'multi-2')];
  const r1 = receiver(1, svc, dirs[0]!, ['--name', 'R1']);
  const r2 = receiver(2, svc, dirs[1]!, ['--name', 'R2']);
  await Promise.all([waitForJson(r1, (e) => e.event === 'listening', 30_000), waitForJson(r2, (e) => e.event === 'listening', 30_000)]);
  const files = [join(work, 'm-a.txt'), join(work, 'm-b.bin')];
  await writeFile(files[0]!, 'first');
  await writeFile(files[1]!, randomBytes(100_000));
  const r = await sendCmd(1, [...files, '--service', svc, '--timeout', '4', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const sent = jsonLines(r.stdout).filter((e) => e.event === 'sent');
  assert.deepEqual(sent.map((e) => `${String(e.peer)}:${String(e.file)}`).sort(), ['R1:m-a.txt', 'R1:m-b.bin', 'R2:m-a.txt', 'R2:m-b.bin']);
  assert.deepEqual(jsonLines(r.stdout).at(-1), { event: 'done', receivers: 2, unreachable: 0, ok: true });
  for (const d of dirs) assert.deepEqual((await readdir(d)).sort(), ['m-a.txt', 'm-b.bin']);
  await Promise.all([r1.stop(), r2.stop()]);
});

test('a sender killed mid-transfer: the receiver reports ERR_RESOURCE_ABORTED and keeps the partial file for resuming', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'inbox-killed');
  const file = join(work, 'huge.bin');
  const fh = await open(file, 'w');
  await fh.truncate(4 * 1024 * 1024 * 1024); // sparse: costs no disk on the sending side
  await fh.close();
  const recv = receiver(2, svc, dir);
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);
  const sender: TrackedProcess = lab.spawnNode(1, PEERLINK_BIN, ['send', file, '--service', svc, '--to', recv.json().find((e) => e.event === 'listening')!.name as string, '--json'], { env: env() });
  await waitForJson(recv, (e) => e.event === 'progress' && (e.bytes as number) > 0, 60_000);
  sender.signal('SIGKILL');
  const failed = await waitForJson(recv, (e) => e.event === 'failed', 60_000);
  assert.equal(failed.code, 'ERR_RESOURCE_ABORTED');
  const left = await readdir(dir);
  assert.ok(left.length === 2 && left.every((f) => f.startsWith('.peerlink-partial-')), `only the partial file and its record: ${left.join(', ')}`);
  assert.ok(recv.running, 'the receiver carries on');
  recv.signal('SIGTERM');
  assert.equal((await recv.exited).code, 0);
  await rm(file, { force: true });
});

test('send with no receiver exits 124 with a clear message', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const file = join(work, 'lonely.txt');
  await writeFile(file, 'nobody listens');
  const r = await sendCmd(1, [file, '--service', service(), '--timeout', '2']);
  assert.equal(r.code, 124, r.stderr);
  assert.match(r.stderr, /no receiver for service _plres\S+\._tcp found within 2 s \(ERR_TIMEOUT\)/);
  assert.equal(r.stdout, '');
});

test('a wrong key: the sender fails (exit 1, ERR_PSK_MISMATCH), nothing is written', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'inbox-wrongkey');
  const file = join(work, 'secret.txt');
  await writeFile(file, 'secret');
  const recv = receiver(2, svc, dir);
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);
  const r = await sendCmd(1, [file, '--service', svc, '--timeout', '4'], randomBytes(32).toString('hex'));
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /ERR_PSK_MISMATCH/);
  assert.deepEqual(await readdir(dir).catch(() => []), []);
  await recv.stop();
});

test('--interface lo on one machine, --to picks the receiver by name', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dirA = join(work, 'lo-a');
  const dirB = join(work, 'lo-b');
  const recvA = receiver(loNs, svc, dirA, ['--interface', 'lo', '--name', 'Inbox-A']);
  const recvB = receiver(loNs, svc, dirB, ['--interface', 'lo', '--name', 'Inbox-B']);
  await Promise.all([waitForJson(recvA, (e) => e.event === 'listening', 30_000), waitForJson(recvB, (e) => e.event === 'listening', 30_000)]);
  const file = join(work, 'for-b.txt');
  await writeFile(file, 'only for B');
  const r = await sendCmd(loNs, [file, '--service', svc, '--interface', 'lo', '--to', 'Inbox-B', '--timeout', '15', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const sent = jsonLines(r.stdout).filter((e) => e.event === 'sent');
  assert.deepEqual(sent.map((e) => e.peer), ['Inbox-B']);
  await waitForJson(recvB, (e) => e.event === 'received', 30_000);
  assert.equal(await readFile(join(dirB, 'for-b.txt'), 'utf8'), 'only for B');
  assert.deepEqual(await readdir(dirA).catch(() => []), []);
  recvA.signal('SIGTERM');
  recvB.signal('SIGTERM');
  assert.equal((await recvA.exited).code, 0);
  assert.equal((await recvB.exited).code, 0);
});

test('receive --quota: a file over the quota is refused, the sender exits 1', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'inbox-quota');
  const file = join(work, 'too-big.bin');
  await writeFile(file, randomBytes(256 * 1024));
  const recv = receiver(2, svc, dir, ['--quota', '100000']);
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);
  const r = await sendCmd(1, [file, '--service', svc, '--timeout', '3', '--json']);
  assert.equal(r.code, 1, r.stderr);
  const failed = jsonLines(r.stdout).find((e) => e.event === 'failed');
  assert.equal(failed?.code, 'ERR_RESOURCE_QUOTA', r.stdout);
  const rf = await waitForJson(recv, (e) => e.event === 'failed', 30_000);
  assert.equal(rf.code, 'ERR_RESOURCE_QUOTA');
  assert.deepEqual(await readdir(dir), []);
  await recv.stop();
});

test('send: SIGINT exits 130 and SIGTERM 143 after a clean shutdown', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const file = join(work, 'sig.txt');
  await writeFile(file, 'x');
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const p: TrackedProcess = lab.spawnNode(1, PEERLINK_BIN, ['send', file, '--service', service(), '--timeout', '60'], { env: env() });
    await waitForLine(p, (l) => l.includes('looking for receivers'), 30_000, { stderr: true });
    p.signal(sig);
    const exit = await p.exited;
    assert.equal(exit.code, code, p.tail());
  }
});

test('chat: a line typed on one host is printed on the other', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const a = lab.spawnNode(1, PEERLINK_BIN, ['chat', '--service', svc, '--name', 'Ann', '--json'], { env: env(), stdin: true });
  const b = lab.spawnNode(2, PEERLINK_BIN, ['chat', '--service', svc, '--name', 'Ben', '--json'], { env: env(), stdin: true });
  await waitForJson(a, (e) => e.event === 'peer' && e.peer === 'Ben' && e.state === 'connected', 30_000);
  a.writeLine('hello Ben \u001b[31m');
  const m = await waitForJson(b, (e) => e.event === 'message', 30_000);
  assert.equal(m.peer, 'Ann');
  assert.equal(m.text, 'hello Ben \u001b[31m');
  a.signal('SIGINT');
  b.signal('SIGINT');
  assert.equal((await a.exited).code, 0, a.tail());
  assert.equal((await b.exited).code, 0, b.tail());
});

// These fail before any network activity, so they run anywhere.
test('send: usage and source errors', { timeout: 60_000 }, async () => {
  const bin = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
    run(process.execPath, [PEERLINK_BIN, ...args], { check: false, env: env() }).then((r) => ({ code: r.code, stderr: r.stderr }));
  const noService = await bin(['send', '/etc/hostname']);
  assert.equal(noService.code, 2);
  assert.match(noService.stderr, /--service/);
  const unknownIf = await bin(['send', '/etc/hostname', '--service', 'x', '--interface', 'nosuchif0']);
  assert.equal(unknownIf.code, 2);
  assert.match(unknownIf.stderr, /ERR_UNKNOWN_INTERFACE/);
  const missing = await bin(['send', '/nonexistent/file.txt', '--service', 'x', '--interface', 'lo']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no such file \(ERR_RESOURCE_SOURCE\)/);
  const hidden = join(work, '.hidden');
  await writeFile(hidden, 'x');
  const badName = await bin(['send', hidden, '--service', 'x', '--interface', 'lo']);
  assert.equal(badName.code, 1);
  assert.match(badName.stderr, /ERR_RESOURCE_NAME/);
  const badKey = await bin(['receive', '--service', 'x', '--psk', 'zz', '--interface', 'lo']);
  assert.equal(badKey.code, 2);
});
