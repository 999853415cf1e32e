// `peerlink send --connect ADDR` to a receiver that discovery also finds: one receiver found
// twice (by address and by browsing) is one peer, gets the file once, send exits 0 — and a
// second send right after reaches it too. Default (pki, --trust-new) and PSK. The real bin,
// in two network namespaces this test creates.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, jsonLines, waitForJson } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let work = '';
let serviceCounter = 0;
const service = (): string => `pltwice${process.pid % 10000}x${++serviceCounter}`;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-cli-twice-'));
  if (skip) return;
  lab = await createLab({ hosts: 2, tag: 'twice' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

const modes: Array<{ label: string; flags: string[]; env: () => NodeJS.ProcessEnv }> = [
  { label: 'pki (default, --trust-new)', flags: ['--trust-new'], env: () => {
    const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete e.PEERLINK_PSK;
    return e;
  } },
  { label: 'psk', flags: [], env: () => ({ ...process.env, NO_COLOR: '1', PEERLINK_PSK: KEY }) },
];
const KEY = randomBytes(32).toString('hex');

let port = 7730;
for (const mode of modes) {
  test(`send --connect to a receiver discovery also finds: sent once, exit 0; a second send right after works too [${mode.label}]`, { skip, timeout: 150_000 }, async (t) => {
    if (!requires(t, 'netns') || !lab) return;
    const svc = service();
    const p = ++port;
    const dir = join(work, `${svc}-inbox`);
    const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--name', 'Both', '--port', String(p), '--yes', '--json', ...mode.flags], { env: mode.env() });
    await waitForJson(recv, (e) => e.event === 'listening', 30_000);
    const file = join(work, `${svc}.txt`);
    await writeFile(file, 'found twice, sent once');
    const send = () => lab!.exec(1, process.execPath, [PEERLINK_BIN, 'send', file, '--service', svc, '--connect', `10.77.0.2:${p}`, '--timeout', '10', '--json', ...mode.flags], { env: mode.env(), check: false, timeoutMs: 60_000 });

    const first = await send();
    const ev1 = jsonLines(first.stdout);
    assert.ok(ev1.some((e) => e.event === 'found' && e.peer === 'Both'), `discovery found the receiver too:\n${first.stdout}`);
    assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
    assert.equal(ev1.filter((e) => e.event === 'sent').length, 1, first.stdout);
    assert.ok(!ev1.some((e) => e.event === 'unreachable'), first.stdout);

    const second = await send();
    assert.equal(second.code, 0, `${second.stdout}\n${second.stderr}\nreceiver:\n${recv.tail()}`);
    assert.equal(jsonLines(second.stdout).filter((e) => e.event === 'sent').length, 1, second.stdout);
    assert.deepEqual((await readdir(dir)).sort(), [`${svc} (1).txt`, `${svc}.txt`]);
    await recv.stop();
  });
}
