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
import { faultLab } from '../harness/faultlab.js';
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
    // A transfer of a few seconds (h1 shaped to 2 Mbit/s): the browse result arrives while
    // the send is under way, after sending began on the --connect connection.
    await writeFile(file, randomBytes(768 * 1024));
    const faults = faultLab(lab);
    await faults.shape(1, { rate: '2mbit' });
    t.after(() => faults.clear());
    const send = () => lab!.exec(1, process.execPath, [PEERLINK_BIN, 'send', file, '--service', svc, '--connect', `10.77.0.2:${p}`, '--timeout', '10', '--json', '--verbose', ...mode.flags], { env: mode.env(), check: false, timeoutMs: 60_000 });

    // Whether the browse result comes before, during or after the transfer varies from run to
    // run: three sends in a row, each right after the last, every one must reach the receiver once.
    let discovered = 0;
    for (let i = 0; i < 3; i++) {
      const r = await send();
      const ev = jsonLines(r.stdout);
      const reach: string = r.code === 0 ? '' : ` (h1 reaches h2 afterwards: ${await lab!.reach(1, '10.77.0.2')})`;
      const why: string = `send ${i + 1}${reach}:\n${ev.filter((e) => e.event !== 'progress').map((e) => JSON.stringify(e)).join('\n')}\n${r.stderr}\nreceiver:\n${recv.tail()}`;
      if (ev.some((e) => e.event === 'found' && e.peer === 'Both')) discovered++;
      assert.equal(r.code, 0, why);
      assert.equal(ev.filter((e) => e.event === 'sent').length, 1, why);
      assert.ok(!ev.some((e) => e.event === 'unreachable'), why);
    }
    assert.ok(discovered > 0, 'discovery never found the receiver: the case is not exercised');
    assert.deepEqual((await readdir(dir)).sort(), [`${svc} (1).txt`, `${svc} (2).txt`, `${svc}.txt`]);
    await recv.stop();
  });
}
