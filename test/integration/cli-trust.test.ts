// `--pki` in the CLI (issue 13): the first-contact prompt on a terminal (driven through a
// pseudo-terminal with `script`) — the same code on both sides, answered y —; `--trust-new`
// without one; `peerlink trust list | forget`, after which the next contact is a first contact
// again; two processes of one user with no --identity get two profiles and meet.
// The real bin, in two network namespaces this test creates.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, until, type TrackedProcess } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let work = '';
let counter = 0;
const service = (): string => `pltr${process.pid % 10000}x${++counter}`;
const env = (cfg: string): NodeJS.ProcessEnv => ({ ...process.env, XDG_CONFIG_HOME: cfg, NO_COLOR: '1', PEERLINK_PSK: undefined as unknown as string });

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pl-cli-trust-'));
  if (skip) return;
  lab = await createLab({ hosts: 2, tag: 'tru' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
  await rm(work, { recursive: true, force: true });
});

function cleanEnv(cfg: string): NodeJS.ProcessEnv {
  const e = env(cfg);
  delete e.PEERLINK_PSK;
  return e;
}

/** A peerlink command on a pseudo-terminal (`script`): its stdin is ours, its output (stdout and stderr) one stream. */
function onTerminal(where: number, args: string[], cfg: string): { p: TrackedProcess; output: () => string } {
  const cmd = [process.execPath, PEERLINK_BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const p = lab!.spawn(where, 'script', ['-qec', cmd, '/dev/null'], { env: cleanEnv(cfg), stdin: true });
  let text = '';
  p.child.stdout?.on('data', (c: Buffer | string) => (text += c.toString()));
  return { p, output: () => text };
}

const CODE = /code (\d{6}) — same code on the other side\? \[y\/N\] /;

test('--pki on terminals: both sides show the same code and ask; y on both sends the file; the next contact is silent', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const cfgR = join(work, 'tty-r');
  const cfgS = join(work, 'tty-s');
  const dir = join(work, 'tty-in');
  const file = join(work, 'hello.txt');
  await writeFile(file, 'compared');
  const recv = onTerminal(1, ['receive', '--pki', '--service', svc, '--interface', 'eth0', '--dir', dir, '--name', 'Rita'], cfgR);
  await until(() => recv.output().includes('receiving for service'), 30_000, 'receive to start');
  const send = onTerminal(2, ['send', '--pki', '--service', svc, '--interface', 'eth0', '--name', 'Sam', file], cfgS);
  const codeR = (await until(() => CODE.exec(recv.output()), 30_000, 'the receiver\'s prompt'))[1];
  const codeS = (await until(() => CODE.exec(send.output()), 30_000, 'the sender\'s prompt'))[1];
  assert.equal(codeR, codeS, 'both terminals show the same code');
  assert.match(recv.output(), /first contact with Sam/);
  send.p.writeLine('y');
  recv.p.writeLine('y');
  // Then the offer itself (consent is separate from trust).
  await until(() => /Accept\? \[y\/N\] $/.test(recv.output()), 30_000, 'the offer prompt');
  recv.p.writeLine('y');
  assert.equal((await send.p.exited).code, 0, send.output());
  assert.equal(await readFile(join(dir, 'hello.txt'), 'utf8'), 'compared');
  assert.match(send.output(), /Rita verified; its key is remembered/);

  // Known now: no code, only the offer.
  const mark = recv.output().length;
  const again = onTerminal(2, ['send', '--pki', '--service', svc, '--interface', 'eth0', '--name', 'Sam', '--as', 'again.txt', file], cfgS);
  await until(() => /Accept\? \[y\/N\] $/.test(recv.output().slice(mark)), 30_000, 'the second offer prompt');
  assert.doesNotMatch(recv.output().slice(mark), CODE);
  recv.p.writeLine('y');
  assert.equal((await again.p.exited).code, 0, again.output());
  assert.doesNotMatch(again.output(), CODE);
  recv.p.signal('SIGTERM');
  await recv.p.exited;
});

test('--trust-new without a terminal; trust list shows the peer; trust forget makes the next contact a first contact again; without --trust-new a script refuses', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const cfgR = join(work, 'nt-r');
  const cfgS = join(work, 'nt-s');
  const dir = join(work, 'nt-in');
  const file = join(work, 'scripted.txt');
  await writeFile(file, 'no questions');
  const recv = lab.spawnNode(1, PEERLINK_BIN, ['receive', '--pki', '--trust-new', '--yes', '--service', svc, '--interface', 'eth0', '--dir', dir, '--name', 'Robo'], { env: cleanEnv(cfgR) });
  await until(() => recv.stderrLines.some((l) => l.includes('receiving for service')), 30_000, 'receive to start');
  const send = async (extra: string[] = []): Promise<{ code: number | null; stderr: string }> => {
    const r = await lab!.exec(2, process.execPath, [PEERLINK_BIN, 'send', '--pki', ...extra, '--service', svc, '--interface', 'eth0', '--name', 'Scripty', '--as', `f${++counter}.txt`, file], { env: cleanEnv(cfgS), check: false, timeoutMs: 60_000 });
    return { code: r.code, stderr: r.stderr };
  };
  const NEW = /new peer Robo \(.*\) trusted without comparing codes \(--trust-new\)/;
  const first = await send(['--trust-new']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, NEW);
  const list = await lab.exec(2, process.execPath, [PEERLINK_BIN, 'trust', 'list'], { env: cleanEnv(cfgS), check: false });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /Robo {2}sha256\//);
  const second = await send(['--trust-new']);
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, NEW, 'a known peer: no first contact');
  // A known peer needs no --trust-new.
  assert.equal((await send()).code, 0);
  const forget = await lab.exec(2, process.execPath, [PEERLINK_BIN, 'trust', 'forget', 'Robo'], { env: cleanEnv(cfgS), check: false });
  assert.equal(forget.code, 0, forget.stderr);
  assert.match(forget.stdout, /forgot .*Robo/);
  const again = await lab.exec(2, process.execPath, [PEERLINK_BIN, 'trust', 'forget', 'Robo'], { env: cleanEnv(cfgS), check: false });
  assert.equal(again.code, 1, 'nothing left to forget');
  // First contact again: without a terminal and without --trust-new it is refused.
  const refused = await send(['--timeout', '5']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /first contact with Robo .* refused: not a terminal; give --trust-new/);
  const third = await send(['--trust-new']);
  assert.equal(third.code, 0, third.stderr);
  assert.match(third.stderr, NEW);
  await recv.stop();
});

test('two processes of one user with the default security (--pki), no --identity: two profiles, two ids, and they meet', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const cfg = join(work, 'same-user');
  const dir = join(work, 'same-in');
  const file = join(work, 'self.txt');
  await writeFile(file, 'two terminals');
  const recv = lab.spawnNode(1, PEERLINK_BIN, ['receive', '--trust-new', '--yes', '--service', svc, '--interface', 'lo', '--dir', dir], { env: cleanEnv(cfg) });
  await until(() => recv.stderrLines.some((l) => l.includes('receiving for service')), 30_000, 'receive to start');
  const r = await lab.exec(1, process.execPath, [PEERLINK_BIN, 'send', '--trust-new', '--service', svc, '--interface', 'lo', file], { env: cleanEnv(cfg), check: false, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readFile(join(dir, 'self.txt'), 'utf8'), 'two terminals');
  const list = await lab.exec(1, process.execPath, [PEERLINK_BIN, 'trust', 'list', '--json'], { env: cleanEnv(cfg), check: false });
  const entries = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { identity: string; id: string });
  assert.equal(new Set(entries.map((e) => e.identity)).size, 2, 'two profiles');
  assert.equal(new Set(entries.map((e) => e.id)).size, 2, 'two ids');
  await recv.stop();
});

test('chat --pki on two terminals: the code on both, the next line answers it, then the chat', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const one = onTerminal(1, ['chat', '--pki', '--service', svc, '--interface', 'eth0', '--name', 'Una'], join(work, 'chat-1'));
  const two = onTerminal(2, ['chat', '--pki', '--service', svc, '--interface', 'eth0', '--name', 'Dos'], join(work, 'chat-2'));
  const c1 = (await until(() => CODE.exec(one.output()), 60_000, 'the first prompt'))[1];
  const c2 = (await until(() => CODE.exec(two.output()), 30_000, 'the second prompt'))[1];
  assert.equal(c1, c2);
  one.p.writeLine('yes');
  two.p.writeLine('y');
  await until(() => one.output().includes('Dos joined') && two.output().includes('Una joined'), 30_000, 'both joined');
  one.p.writeLine('hola');
  await until(() => two.output().includes('[Una] hola'), 30_000, 'the message');
  one.p.writeLine('/quit');
  two.p.writeLine('/quit');
  await one.p.exited;
  await two.p.exited;
});
