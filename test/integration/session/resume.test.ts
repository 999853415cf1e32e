// Resumable transfers between two network namespaces over a tbf-limited link (400 Mbit/s), a
// 256 MiB file interrupted at about half in three ways — the sender killed (and run again), the
// receiver killed and restarted, the link cut for longer than the keepalive window — each
// completing with the right SHA-256 and sending well under the whole file after the
// interruption (counted in the transfers' own counters). Each side runs in a process of its own
// (resume-peer.ts) so it can be killed. The faults come from the shared fault lab
// (test/harness/faultlab.ts): `shape` (tbf), `kill` (SIGKILL), `cut` / `restore`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../harness/netns.js';
import { createFaultLab, type FaultLab } from '../../harness/faultlab.js';
import { killAllTracked, waitForJson, sleep, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const PEER = fileURLToPath(new URL('./resume-peer.js', import.meta.url));
const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
const KEY = randomBytes(32).toString('hex');
const RATE = '400mbit';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let faults: FaultLab | undefined;
let work: string;
let file: string;
let digest: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-resume-'));
  file = join(work, 'big.bin');
  // Random, so no block of it matches another by accident; hashed as it is written.
  const h = createHash('sha256');
  const ws = createWriteStream(file);
  for (let i = 0; i < SIZE / (4 * MiB); i++) {
    const b = randomBytes(4 * MiB);
    h.update(b);
    if (!ws.write(b)) await new Promise<void>((r) => ws.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => ws.end((e?: Error | null) => (e ? j(e) : r())));
  digest = h.digest('hex');
  if (skip) return;
  faults = await createFaultLab({ hosts: 2, tag: 'resume' });
  lab = faults.lab;
  // The sender's egress is the bottleneck: 400 Mbit/s, so 256 MiB takes about 5.5 s.
  await faults.shape(1, { rate: RATE, burst: '512kb', latency: '100ms' });
});

after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

const KEEPALIVE = { keepaliveInterval: 500, keepaliveTimeout: 2000 };
let nextPort = 7400;

function receiver(dir: string, port: number, peerIdHex: string): TrackedProcess {
  return lab!.spawnNode(2, PEER, [JSON.stringify({ role: 'receive', key: KEY, dir, port, peerIdHex, ...KEEPALIVE })]);
}

function sender(port: number): TrackedProcess {
  return lab!.spawnNode(1, PEER, [JSON.stringify({ role: 'send', key: KEY, file, name: 'big.bin', connect: `${lab!.hosts[1]!.ipv4}:${port}`, ...KEEPALIVE })]);
}

type Ev = Record<string, unknown> & { ev: string };
const ev = (name: string) => (e: Ev): boolean => e.ev === name;

/** Resolves once the process has reported progress past `bytes`. */
function past(p: TrackedProcess, bytes: number): Promise<Ev> {
  return waitForJson<Ev>(p, (e) => e.ev === 'progress' && Number(e.bytes) >= bytes, 60_000);
}

async function freshDir(): Promise<string> {
  return mkdtemp(join(work, 'inbox-'));
}

test('the sender killed at about half and run again resumes; only the rest is sent', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const dir = await freshDir();
  const port = nextPort++;
  const r = receiver(dir, port, randomBytes(16).toString('hex'));
  await waitForJson(r, ev('listening'), 20_000);
  const s1 = sender(port);
  await past(s1, SIZE * 0.4);
  await faults!.kill(s1);
  const lost = (await waitForJson<Ev>(r, ev('failed'), 30_000)) as Ev;
  assert.equal(lost.code, 'ERR_RESOURCE_ABORTED');
  const s2 = sender(port);
  const sent = (await waitForJson<Ev>(s2, (e) => e.ev === 'sent' || e.ev === 'failed', 120_000)) as Ev;
  assert.equal(sent.ev, 'sent', JSON.stringify(sent));
  assert.equal(sent.sha256, digest);
  const from = Number(sent.resumedFrom);
  assert.ok(from >= SIZE * 0.3, `resumed from ${from}`);
  assert.equal(sent.bytesOnWire, SIZE - from, 'the second run sent only what the receiver lacked');
  const got = (await waitForJson<Ev>(r, ev('received'), 30_000)) as Ev;
  assert.equal(got.sha256, digest);
  assert.equal(got.resumedFrom, from);
  assert.ok(Number(got.bytesOnWire) < SIZE * 0.7, `received ${String(got.bytesOnWire)} bytes after the restart`);
});

test('the receiver killed at about half and restarted: the waiting sender resumes by itself', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const dir = await freshDir();
  const port = nextPort++;
  const id = randomBytes(16).toString('hex');
  const r1 = receiver(dir, port, id);
  await waitForJson(r1, ev('listening'), 20_000);
  const s = sender(port);
  await past(s, SIZE * 0.45);
  await faults!.kill(r1);
  const paused = (await waitForJson<Ev>(s, ev('paused'), 30_000)) as Ev;
  const wireAtPause = Number(paused.wire);
  await sleep(500);
  const r2 = receiver(dir, port, id);
  const listening = (await waitForJson<Ev>(r2, ev('listening'), 20_000)) as Ev;
  assert.equal((listening.partial as unknown[]).length, 1, 'the restarted receiver holds the partial file');
  const resumed = (await waitForJson<Ev>(s, ev('resumed'), 60_000)) as Ev;
  const sent = (await waitForJson<Ev>(s, (e) => e.ev === 'sent' || e.ev === 'failed', 120_000)) as Ev;
  assert.equal(sent.ev, 'sent', JSON.stringify(sent));
  assert.equal(sent.sha256, digest);
  const from = Number(resumed.offset);
  assert.ok(from >= SIZE * 0.3, `resumed from ${from}`);
  const afterResume = Number(sent.bytesOnWire) - wireAtPause;
  assert.equal(afterResume, SIZE - from);
  assert.ok(afterResume < SIZE * 0.7, `${afterResume} bytes sent after the interruption`);
  const got = (await waitForJson<Ev>(r2, ev('received'), 30_000)) as Ev;
  assert.equal(got.sha256, digest);
});

test('the link cut for longer than the keepalive window: the sender pauses, and resumes when the link is back', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const dir = await freshDir();
  const port = nextPort++;
  const r = receiver(dir, port, randomBytes(16).toString('hex'));
  await waitForJson(r, ev('listening'), 20_000);
  const s = sender(port);
  await past(s, SIZE * 0.45);
  await faults!.cut(1, 'switch');
  try {
    // The keepalive (2 s here) declares the peer lost: the transfer pauses instead of failing.
    const paused = (await waitForJson<Ev>(s, ev('paused'), 30_000)) as Ev;
    assert.ok(Number(paused.bytes) < SIZE);
    await sleep(1000);
  } finally {
    await faults!.restore(1);
  }
  const resumed = (await waitForJson<Ev>(s, ev('resumed'), 90_000)) as Ev;
  const sent = (await waitForJson<Ev>(s, (e) => e.ev === 'sent' || e.ev === 'failed', 120_000)) as Ev;
  assert.equal(sent.ev, 'sent', JSON.stringify(sent));
  assert.equal(sent.sha256, digest);
  const from = Number(resumed.offset);
  assert.ok(from >= SIZE * 0.3, `resumed from ${from}`);
  assert.ok(Number(sent.bytesOnWire) - Number(resumed.wire) === SIZE - from, 'after the resume, only the rest crossed');
  assert.ok(SIZE - from < SIZE * 0.7);
  const got = (await waitForJson<Ev>(r, ev('received'), 30_000)) as Ev;
  assert.equal(got.sha256, digest);
  assert.equal(got.resumedFrom, from);
});
