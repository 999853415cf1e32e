// `peerlink send` killed mid-transfer and run again resumes ("resuming NAME at N %"), over a
// 400 Mbit/s tbf link between two namespaces; `receive` says how many partial files it holds,
// and `--list-partial` / `--discard-partial` show and drop them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from '../harness/netns.js';
import { createFaultLab } from '../harness/faultlab.js';
import { killAllTracked, run, waitForJson, type TrackedProcess } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
const MiB = 1024 * 1024;
const KEY = randomBytes(32).toString('hex');
const env = { ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1' };
let lab: Lab | undefined;
let work = '';

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-cli-resume-'));
  if (skip) return;
  const faults = await createFaultLab({ hosts: 2, tag: 'clires' });
  lab = faults.lab;
  await faults.shape(1, { rate: '400mbit', burst: '512kb', latency: '100ms' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

test('send killed mid-transfer and run again resumes; receive counts, lists and discards partial files', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const data = randomBytes(128 * MiB);
  const file = join(work, 'photos.tar');
  await writeFile(file, data);
  const dir = join(work, 'inbox');
  const port = '7811';
  const recvArgs = ['receive', '--service', 'plcliresume', '--dir', dir, '--yes', '--json', '--port', port];
  const recv: TrackedProcess = lab.spawnNode(2, PEERLINK_BIN, recvArgs, { env });
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);
  // By address (mDNS finds it too, inside the lab: the same receiver, not a second one).
  const to = `${lab.hosts[1]!.ipv4}:${port}`;
  const send1 = lab.spawnNode(1, PEERLINK_BIN, ['send', file, '--service', 'plcliresume', '--connect', to, '--json'], { env });
  await waitForJson(recv, (e) => e.event === 'progress' && Number(e.bytes) > 50 * MiB, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\nsender: ${send1.tail()}`);
  });
  send1.signal('SIGKILL');
  const failed = await waitForJson(recv, (e) => e.event === 'failed', 60_000);
  assert.equal(failed.code, 'ERR_RESOURCE_ABORTED');
  assert.ok((await readdir(dir)).every((f) => f.startsWith('.peerlink-partial-')), 'only the partial file and its record');

  // Run again (text output): it says it resumes, sends the rest, and the file verifies.
  const r = await lab.exec(1, process.execPath, [PEERLINK_BIN, 'send', file, '--service', 'plcliresume', '--connect', to], { env, check: false, timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const m = /resuming "photos\.tar" at (\d+) %/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.ok(Number(m[1]) >= 25 && Number(m[1]) < 100, `resumed at ${m[1]} %`);
  const received = await waitForJson(recv, (e) => e.event === 'received', 30_000);
  assert.equal(received.sha256, createHash('sha256').update(data).digest('hex'));
  assert.ok(recv.json().some((e) => e.event === 'resuming' && Number(e.offset) > 0));
  assert.deepEqual((await readFile(join(dir, 'photos.tar'))).equals(data), true);
  recv.signal('SIGTERM');
  assert.equal((await recv.exited).code, 0);

  // A partial left by a receiver stopped mid-transfer is counted at the next start, listed and discarded.
  const recv2 = lab.spawnNode(2, PEERLINK_BIN, recvArgs, { env });
  await waitForJson(recv2, (e) => e.event === 'listening', 30_000);
  const send2 = lab.spawnNode(1, PEERLINK_BIN, ['send', file, '--as', 'again.tar', '--service', 'plcliresume', '--connect', to, '--json'], { env });
  await waitForJson(recv2, (e) => e.event === 'progress' && Number(e.bytes) > 10 * MiB, 60_000);
  recv2.signal('SIGTERM');
  assert.equal((await recv2.exited).code, 0);
  await send2.stop();
  const recv3 = lab.spawnNode(2, PEERLINK_BIN, recvArgs, { env });
  const held = await waitForJson(recv3, (e) => e.event === 'partialFiles', 30_000);
  assert.equal(held.count, 1);
  recv3.signal('SIGTERM');
  await recv3.exited;
  const list = await run(process.execPath, [PEERLINK_BIN, 'receive', '--dir', dir, '--list-partial'], { env });
  assert.match(list.stdout, /^again\.tar\t/m);
  assert.match(list.stderr, /holding 1 partial file/);
  const drop = await run(process.execPath, [PEERLINK_BIN, 'receive', '--dir', dir, '--discard-partial'], { env });
  assert.match(drop.stderr, /removed 1 partial file/);
  assert.deepEqual((await readdir(dir)).sort(), ['photos.tar']);
});
