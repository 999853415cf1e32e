// `peerlink chat --invite` end to end: the real bin, peers in one loopback-only namespace this
// test creates (`--interface lo`): nobody joins unasked; /invite, /accept, /decline.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, noLineWithin, waitForJson, type TrackedProcess } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let ns = '';
const env = (): NodeJS.ProcessEnv => ({ ...process.env, NO_COLOR: '1', PEERLINK_PSK: '00112233445566778899aabbccddeeff' });
const svc = `plinv${process.pid % 10000}`;

before(async () => {
  if (skip) return;
  lab = await createLab({ hosts: 0, tag: 'inv' });
  ns = await lab.addLoopbackNamespace('invlo');
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

function chat(name: string, extra: string[] = []): TrackedProcess {
  return lab!.spawnNode(ns, PEERLINK_BIN, ['chat', '--service', svc, '--interface', 'lo', '--name', name, '--json', ...extra], { env: env(), stdin: true, label: `chat ${name}` });
}

test('chat --invite: found peers are not joined; /invite → invitation with its text → /accept joins both; /decline refuses; unanswered, it expires', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const ann = chat('Ann', ['--invite']);
  const ben = chat('Ben', ['--invite']);
  const cat = chat('Cat', ['--invite']);
  for (const p of [ann, ben, cat]) await waitForJson(p, (e) => e.event === 'ready', 30_000);
  // Found, but nobody joins unasked.
  assert.ok(await noLineWithin(ann, (l) => l.includes('"state":"connected"'), 3000), ann.tail());
  ann.writeLine('/invite Ben shall we?');
  const inv = await waitForJson<Record<string, unknown>>(ben, (e) => e.event === 'invitation', 30_000);
  assert.equal(inv.peer, 'Ann');
  assert.equal(inv.context, 'shall we?');
  assert.equal(inv.invited, true);
  ben.writeLine('/accept');
  await waitForJson(ann, (e) => e.event === 'peer' && e.peer === 'Ben' && e.state === 'connected', 30_000);
  await waitForJson(ben, (e) => e.event === 'peer' && e.peer === 'Ann' && e.state === 'connected', 30_000);
  ann.writeLine('hello Ben');
  await waitForJson(ben, (e) => e.event === 'message' && e.text === 'hello Ben', 20_000);
  // Cat is declined and joins nobody.
  cat.writeLine('/invite Ben');
  await waitForJson(ben, (e) => e.event === 'invitation' && e.peer === 'Cat', 30_000);
  ben.writeLine('/decline Cat');
  const refused = await waitForJson<Record<string, unknown>>(cat, (e) => e.event === 'error' && e.peer === 'Ben', 30_000);
  assert.equal(refused.code, 'ERR_INVITATION_DECLINED');
  assert.ok(!cat.json<Record<string, unknown>>().some((e) => e.event === 'peer' && e.state === 'connected'), cat.tail());
  // An invitation nobody answers expires on both sides (the default timeout, 30 s).
  cat.writeLine('/invite Ann');
  await waitForJson(ann, (e) => e.event === 'invitation' && e.peer === 'Cat', 30_000);
  const ended = await waitForJson<Record<string, unknown>>(ann, (e) => e.event === 'invitationEnded' && e.peer === 'Cat', 60_000);
  assert.equal(ended.state, 'expired');
  const expired = await waitForJson<Record<string, unknown>>(cat, (e) => e.event === 'error' && e.peer === 'Ann', 30_000);
  assert.equal(expired.code, 'ERR_INVITATION_TIMEOUT');
  for (const p of [ann, ben, cat]) p.signal('SIGINT');
  for (const p of [ann, ben, cat]) assert.equal((await p.exited).code, 0, p.tail());
});

test('chat --private: two private chats find and join each other; the names they know each other by are the --name given', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const args = ['--private'];
  const pam = lab.spawnNode(ns, PEERLINK_BIN, ['chat', '--service', `${svc}p`, '--interface', 'lo', '--name', 'Pam', '--json', ...args], { env: env(), stdin: true, label: 'chat Pam' });
  const quin = lab.spawnNode(ns, PEERLINK_BIN, ['chat', '--service', `${svc}p`, '--interface', 'lo', '--name', 'Quin', '--json', ...args], { env: env(), stdin: true, label: 'chat Quin' });
  await waitForJson(pam, (e) => e.event === 'peer' && e.peer === 'Quin' && e.state === 'connected', 30_000);
  await waitForJson(quin, (e) => e.event === 'peer' && e.peer === 'Pam' && e.state === 'connected', 30_000);
  pam.writeLine('psst');
  await waitForJson(quin, (e) => e.event === 'message' && e.text === 'psst', 20_000);
  for (const p of [pam, quin]) p.signal('SIGINT');
  for (const p of [pam, quin]) assert.equal((await p.exited).code, 0, p.tail());
});
