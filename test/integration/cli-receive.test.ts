// `peerlink receive` (issue "the first hour"): consent before receiving (a prompt on a
// terminal, driven through a pseudo-terminal with `script`; --yes; refusal without one),
// leftovers of a killed receive (defect 8), partial files on SIGTERM, connecting by
// address with mDNS dropped (--port, --connect), and empty keys (hostile peers, item 10).
// The real bin, in two network namespaces this test creates.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, run, until, waitForJson, waitForLine, type TrackedProcess, jsonLines } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let work = '';
const KEY = randomBytes(32).toString('hex');
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1', ...extra });
let serviceCounter = 0;
const service = (): string => `plrcv${process.pid % 10000}x${++serviceCounter}`;
const PARTIAL = /^\.peerlink-(?:partial-)?(?:\d+-)?[0-9a-f]+\.part$/;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-cli-recv-'));
  if (skip) return;
  lab = await createLab({ hosts: 2, tag: 'rcv' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

async function send(where: number, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await lab!.exec(where, process.execPath, [PEERLINK_BIN, 'send', ...args], { env: env(), check: false, timeoutMs: 60_000 });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** `receive` on a pseudo-terminal: `script` gives it one; its stdin is ours, its output (stdout and stderr) comes back as one stream. */
function receiveOnTerminal(where: number, args: string[]): { p: TrackedProcess; output: () => string } {
  const cmd = [process.execPath, PEERLINK_BIN, 'receive', ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const p = lab!.spawn(where, 'script', ['-qec', cmd, '/dev/null'], { env: env(), stdin: true });
  let text = '';
  p.child.stdout?.on('data', (c: Buffer | string) => (text += c.toString()));
  return { p, output: () => text };
}

// The prompt needs the library's consent API (resources.accept), merged separately.
test('receive on a terminal asks per offer: y accepts, n refuses and the sender exits 1 with ERR_RESOURCE_REFUSED', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'asked');
  const recv = receiveOnTerminal(2, ['--service', svc, '--dir', dir, '--name', 'Asker']);
  await until(() => recv.output().includes('receiving for service'), 30_000, 'receive to start');
  assert.doesNotMatch(recv.output(), /refused/);
  const file = join(work, 'ask-me.txt');
  await writeFile(file, 'say yes');

  const yes = lab.spawnNode(1, PEERLINK_BIN, ['send', file, '--service', svc, '--to', 'Asker'], { env: env() });
  await until(() => /offers a file: "ask-me\.txt" \(7 B\)\. Accept\? \[y\/N\] $/.test(recv.output()), 30_000, 'the prompt');
  await waitForLine(yes, (l) => l.includes('waiting for Asker to accept "ask-me.txt"'), 15_000, { stderr: true });
  recv.p.writeLine('y');
  assert.equal((await yes.exited).code, 0, yes.tail());
  assert.equal(await readFile(join(dir, 'ask-me.txt'), 'utf8'), 'say yes');

  const mark = recv.output().length;
  const no = lab.spawnNode(1, PEERLINK_BIN, ['send', file, '--service', svc, '--to', 'Asker'], { env: env() });
  await until(() => recv.output().slice(mark).includes('Accept? [y/N]'), 30_000, 'the second prompt');
  recv.p.writeLine('n');
  assert.equal((await no.exited).code, 1, no.tail());
  assert.ok(no.stderrLines.some((l) => /Asker refused "ask-me\.txt" \(ERR_RESOURCE_REFUSED\)/.test(l)), no.tail());
  assert.deepEqual(await readdir(dir), ['ask-me.txt']);
  recv.p.signal('SIGTERM');
  await recv.p.exited;
});

// The refusal needs the library's consent API; the start-up notice does not.
test('receive without a terminal refuses offers unless --yes, and says so when it starts', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'no-tty');
  const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--name', 'Closed', '--json'], { env: env() });
  await waitForJson(recv, (e) => e.event === 'listening' && e.accept === 'none', 30_000);
  await waitForLine(recv, (l) => l.includes('not a terminal, so every offer will be refused; give --yes to accept them'), 10_000, { stderr: true });
  const file = join(work, 'unwanted.txt');
  await writeFile(file, 'no');
  const r = await send(1, [file, '--service', svc, '--json']);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(jsonLines(r.stdout).find((e) => e.event === 'failed')?.code, 'ERR_RESOURCE_REFUSED', r.stdout);
  assert.deepEqual(await readdir(dir).catch(() => []), []);
  await recv.stop();
});

test('receive --yes without a terminal accepts offers', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'yes');
  const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--yes', '--json'], { env: env() });
  await waitForJson(recv, (e) => e.event === 'listening' && e.accept === 'all', 30_000);
  const file = join(work, 'welcome.txt');
  await writeFile(file, 'yes please');
  const r = await send(1, [file, '--service', svc]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readFile(join(dir, 'welcome.txt'), 'utf8'), 'yes please');
  await recv.stop();
});

test('defect 8: receive reports temporary files an interrupted run of an earlier version left; SIGTERM mid-transfer keeps its partial file for resuming', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const dir = join(work, 'leftovers');
  await mkdir(dir, { recursive: true });
  const stale = '.peerlink-0123456789abcdef01234567.part';
  await writeFile(join(dir, stale), randomBytes(1000));
  const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--yes', '--json'], { env: env() });
  await waitForJson(recv, (e) => e.event === 'listening', 30_000);
  const note = recv.json().find((e) => e.event === 'partialFile');
  assert.equal(note?.file, stale, recv.tail());
  await waitForLine(recv, (l) => l.includes(stale), 10_000, { stderr: true });
  if (note?.removed !== true) await rm(join(dir, stale));

  // A transfer in progress when receive is stopped leaves its partial file (and record), to resume.
  const big = join(work, 'big.bin');
  const fh = await open(big, 'w');
  await fh.truncate(2 * 1024 * 1024 * 1024); // sparse
  await fh.close();
  const sender = lab.spawnNode(1, PEERLINK_BIN, ['send', big, '--service', svc, '--json'], { env: env() });
  await waitForJson(recv, (e) => e.event === 'progress' && (e.bytes as number) > 0, 30_000);
  assert.ok((await readdir(dir)).some((f) => PARTIAL.test(f)), 'a partial file while receiving');
  recv.signal('SIGTERM');
  assert.equal((await recv.exited).code, 0, recv.tail());
  const left = await readdir(dir);
  assert.ok(left.length === 2 && left.every((f) => f.startsWith('.peerlink-partial-')), `the partial file and its record: ${left.join(', ')}`);
  await sender.stop();
  await rm(big, { force: true });
});

test('--connect HOST:PORT reaches a receive --port PORT with mDNS dropped on both hosts; receive prints its addresses', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  for (const h of [1, 2]) {
    await lab.exec(h, 'nft', ['add', 'table', 'inet', 'nomdns']);
    await lab.exec(h, 'nft', ['add', 'chain', 'inet', 'nomdns', 'in', '{ type filter hook input priority 0; }']);
    await lab.exec(h, 'nft', ['add', 'rule', 'inet', 'nomdns', 'in', 'udp', 'dport', '5353', 'drop']);
  }
  t.after(async () => {
    for (const h of [1, 2]) await lab!.exec(h, 'nft', ['delete', 'table', 'inet', 'nomdns'], { check: false });
  });
  const svc = service();
  const dir = join(work, 'by-address');
  const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', svc, '--dir', dir, '--port', '7711', '--yes', '--json'], { env: env() });
  const listening = await waitForJson(recv, (e) => e.event === 'listening', 30_000);
  assert.equal(listening.port, 7711);
  assert.ok((listening.addresses as string[]).includes('10.77.0.2:7711'), JSON.stringify(listening));
  const file = join(work, 'direct.txt');
  await writeFile(file, 'no discovery needed');
  const r = await send(1, [file, '--service', svc, '--connect', '10.77.0.2:7711', '--timeout', '5', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(jsonLines(r.stdout).some((e) => e.event === 'sent'), r.stdout);
  assert.equal(await readFile(join(dir, 'direct.txt'), 'utf8'), 'no discovery needed');
  await recv.stop();
});

// Usage errors fail before any network activity, so these run anywhere.
test('hostile peers item 10: an empty or blank key is a usage error (exit 2), from --psk, --psk-file or PEERLINK_PSK', { timeout: 60_000 }, async () => {
  const empty = join(work, 'empty.key');
  await writeFile(empty, '\n');
  const cases: Array<[string[], NodeJS.ProcessEnv]> = [
    [['receive', '--service', 'x', '--interface', 'lo', '--psk', ''], {}],
    [['receive', '--service', 'x', '--interface', 'lo', '--psk-file', empty], {}],
    [['receive', '--service', 'x', '--interface', 'lo'], { PEERLINK_PSK: '  ' }],
    [['send', '/etc/hostname', '--service', 'x', '--interface', 'lo', '--psk', ' '], {}],
  ];
  for (const [args, extra] of cases) {
    const r = await run(process.execPath, [PEERLINK_BIN, ...args, '--timeout', '1'], { check: false, env: env(extra) });
    assert.equal(r.code, 2, `${args.join(' ')} ${JSON.stringify(extra)}: ${r.stderr}`);
    assert.match(r.stderr, /is empty/);
  }
});
