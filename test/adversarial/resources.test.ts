/**
 * Hostile peers and files (hostile-peers items 5 and the transfer budgets): an attacker built
 * from raw sockets and hand-written frames — STREAM_OFFER (kind 1, resource) on its control
 * connection, then a stream connection with STREAM_BIND, then resource frames written byte by
 * byte as docs/resources.md lays them out (u32 big-endian length + UTF-8 JSON; the body raw),
 * each carried in the stream's framed messages (docs/session.md).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { cleanup, rawPeer, startVictim, MiB } from './harness.js';
import { until } from '../harness/proc.js';
import { openResourceStream, resourceFrame, type RawStream } from './resource-attacker.js';

const dirs: string[] = [];
after(async () => {
  await cleanup();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function downloadDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pl-adv-res-'));
  dirs.push(d);
  return d;
}


const firstAnswer = (s: RawStream, what: string): Promise<Record<string, unknown>> => until(() => s.frames()[0], 10_000, what);

test('resources (a): a victim with no resource listener refuses the offer and writes no file', { timeout: 60_000 }, async () => {
  const dir = await downloadDir();
  const v = await startVictim({ resources: { directory: dir } });
  const peer = await rawPeer(v);
  const s = await openResourceStream(v, peer);
  const body = randomBytes(64 * 1024);
  // The attacker does not wait for an answer: header, body and trailer at once.
  s.write(resourceFrame({ type: 'resource', v: 1, name: 'dropped.exe', size: body.length, sha256: null }));
  s.write(body);
  s.write(resourceFrame({ type: 'end', sha256: createHash('sha256').update(body).digest('hex') }));
  const answer = await firstAnswer(s, 'an answer to the offer');
  assert.equal(answer.type, 'reject');
  assert.equal(answer.code, 'ERR_RESOURCE_REFUSED');
  await new Promise((r) => setTimeout(r, 300));
  const c = await v.cost();
  assert.deepEqual(c.files, [], 'nothing written, not even a .part file');
});

test('resources (b): a transfer that announces a huge size and goes silent is dropped after the idle timeout (its reservation released; its partial kept, counted by bytes on disk); a legitimate one then succeeds', { timeout: 60_000 }, async () => {
  const dir = await downloadDir();
  const v = await startVictim({ acceptResources: true, resources: { directory: dir, quota: 100 * MiB }, budgets: { transferIdleTimeout: 1000 } });
  const peer = await rawPeer(v);
  const stalled = await openResourceStream(v, peer);
  stalled.write(resourceFrame({ type: 'resource', v: 1, name: 'huge.bin', size: 100 * MiB, sha256: null }));
  assert.equal((await firstAnswer(stalled, 'accept')).type, 'accept');
  stalled.write(randomBytes(1024));
  // It holds the whole quota now…
  await until(async () => (await v.cost()).files.some((f) => f.endsWith('.part')), 5000, 'the .part file');
  // …and then falls silent (the connections stay open; the control connection answers PINGs).
  await until(() => stalled.frames().find((f) => f.type === 'error'), 10_000, 'the idle timeout');
  const failure = stalled.frames().find((f) => f.type === 'error')!;
  assert.equal(failure.code, 'ERR_TIMEOUT');
  // Its reservation goes; its partial file stays for resuming, counted by its bytes on disk (≤ 1 KiB here), not by the 100 MiB it announced.
  await until(async () => (await v.cost()).files.filter((f) => f.startsWith('.peerlink-partial-')).length === 2, 5000, 'the partial file kept');

  const legit = await openResourceStream(v, peer);
  const body = randomBytes(60 * 1024);
  const sha256 = createHash('sha256').update(body).digest('hex');
  legit.write(resourceFrame({ type: 'resource', v: 1, name: 'legit.bin', size: 99 * MiB, sha256: null }));
  const answer = await firstAnswer(legit, 'an answer to the legitimate offer');
  assert.equal(answer.type, 'accept', `the released reservation makes room (got ${JSON.stringify(answer)})`);
  legit.socket.destroy();

  const small = await openResourceStream(v, peer);
  small.write(resourceFrame({ type: 'resource', v: 1, name: 'small.bin', size: body.length, sha256: null }));
  assert.equal((await firstAnswer(small, 'accept')).type, 'accept');
  small.write(body);
  small.write(resourceFrame({ type: 'end', sha256 }));
  const done = await until(() => small.frames().find((f) => f.type === 'done' || f.type === 'error'), 10_000, 'done');
  assert.equal(done.type, 'done', JSON.stringify(done));
  assert.equal(done.name, 'small.bin');
  assert.ok((await v.cost()).files.includes('small.bin'));
});

test('resources (c): more than transfersPerPeer concurrent transfers from one peer are refused, and counted', { timeout: 60_000 }, async () => {
  const dir = await downloadDir();
  const v = await startVictim({ acceptResources: true, resources: { directory: dir } });
  const peer = await rawPeer(v);
  const streams: RawStream[] = [];
  for (let i = 0; i < 7; i++) {
    const s = await openResourceStream(v, peer);
    s.write(resourceFrame({ type: 'resource', v: 1, name: `f${i}.bin`, size: 1 * MiB, sha256: null }));
    await firstAnswer(s, `answer ${i}`);
    streams.push(s);
  }
  const answers = streams.map((s) => s.frames()[0]!);
  assert.deepEqual(
    answers.map((a) => (a.type === 'accept' ? 'accept' : String(a.code))),
    ['accept', 'accept', 'accept', 'accept', 'ERR_RESOURCE_BUSY', 'ERR_RESOURCE_BUSY', 'ERR_RESOURCE_BUSY'],
  );
  const c = await v.cost();
  assert.equal(c.stats.budgets.transfersPerPeer, 3);
  assert.equal(c.files.filter((f) => f.endsWith('.part')).length, 4);
});
