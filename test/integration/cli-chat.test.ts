// `peerlink chat` end to end: the real bin, several peers in one loopback-only namespace this
// test creates (`--interface lo`), one of them on a pseudo-terminal (`script` from bsdutils)
// where the terminal behaviour is what is tested.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, noLineWithin, until, waitForJson, waitForLine, type TrackedProcess } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { PEERLINK_BIN } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
let ns = '';
const env = (): NodeJS.ProcessEnv => ({ ...process.env, NO_COLOR: '1', PEERLINK_PSK: '00112233445566778899aabbccddeeff' });
let serviceCounter = 0;
const service = (): string => `plchat${process.pid % 10000}x${++serviceCounter}`;

before(async () => {
  if (skip) return;
  lab = await createLab({ hosts: 0, tag: 'chat' });
  ns = await lab.addLoopbackNamespace('chatlo');
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

function chat(svc: string, name: string, extra: string[] = []): TrackedProcess {
  return lab!.spawnNode(ns, PEERLINK_BIN, ['chat', '--service', svc, '--interface', 'lo', '--name', name, ...extra], { env: env(), stdin: true, label: `chat ${name}` });
}

/** `chat` on a pseudo-terminal: stdin, stdout and stderr are one tty; the transcript comes out on stdout. */
function chatOnTty(svc: string, name: string, extra: string[] = []): TrackedProcess {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, PEERLINK_BIN, 'chat', '--service', svc, '--interface', 'lo', '--name', name, ...extra].map(q).join(' ');
  return lab!.spawn(ns, 'script', ['-qec', cmd, '/dev/null'], { env: env(), stdin: true, label: `chat ${name} (tty)` });
}

const messages = (p: TrackedProcess): string[] => p.json<Record<string, unknown>>().filter((e) => e.event === 'message').map((e) => String(e.text));
const connectedTo = (p: TrackedProcess, peer: string): Promise<unknown> => waitForJson<Record<string, unknown>>(p, (e) => e.event === 'peer' && e.peer === peer && e.state === 'connected', 30_000);

/**
 * What a terminal shows for a transcript: printable text, CR, LF, and the few CSI sequences
 * readline uses (cursor column G, cursor moves A/B/C/D, erase line K, erase below J).
 */
function render(transcript: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  const line = (): string[] => (lines[row] ??= []);
  for (let i = 0; i < transcript.length; i++) {
    const c = transcript[i] as string;
    if (c === '\r') col = 0;
    else if (c === '\n') {
      row++;
      line();
    } else if (c === '\u001b' && transcript[i + 1] === '[') {
      const m = /^\[(\d*)([A-Za-z])/.exec(transcript.slice(i + 1));
      if (!m) continue;
      i += m[0].length;
      const n = m[1] === '' ? undefined : Number(m[1]);
      switch (m[2]) {
        case 'G':
          col = (n ?? 1) - 1;
          break;
        case 'C':
          col += n ?? 1;
          break;
        case 'D':
          col = Math.max(0, col - (n ?? 1));
          break;
        case 'A':
          row = Math.max(0, row - (n ?? 1));
          break;
        case 'B':
          row += n ?? 1;
          line();
          break;
        case 'K':
          if ((n ?? 0) === 0) line().splice(col);
          else if (n === 1) line().fill(' ', 0, col);
          else line().length = 0;
          break;
        case 'J':
          line().splice(col);
          lines.length = row + 1;
          break;
        default:
          break;
      }
    } else if (c >= ' ') {
      const l = line();
      while (l.length < col) l.push(' ');
      l[col++] = c;
    }
  }
  return lines.map((l) => l.join('').trimEnd());
}

/** Everything a process wrote to stdout, partial lines (a prompt) included. */
function transcript(p: TrackedProcess): () => string {
  let text = '';
  p.child.stdout?.on('data', (c: string | Buffer) => (text += c.toString()));
  return () => text;
}

test('chat: lines typed before anyone joins go once to each peer present when the first one joins; --json "queued", then "sent" with the count', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  // Alone: a line is queued, not "sent".
  const solo = chat(svc, 'Solo', ['--json']);
  await waitForJson(solo, (e) => e.event === 'ready', 30_000);
  solo.writeLine('anyone?');
  const first = await waitForJson(solo, (e) => e.event === 'queued' || e.event === 'sent', 10_000);
  assert.equal(first.event, 'queued', solo.tail());
  assert.equal(first.text, 'anyone?');
  solo.signal('SIGINT');
  assert.equal((await solo.exited).code, 0, solo.tail());
  assert.ok(!solo.json().some((e) => e.event === 'sent'), solo.tail());

  const svc2 = service();
  const b = chat(svc2, 'Ben', ['--json']);
  const c = chat(svc2, 'Cat', ['--json']);
  await connectedTo(b, 'Cat');
  await connectedTo(c, 'Ben');
  // Written before Ann has even started: Ann reads both lines while nobody is connected.
  const a = chat(svc2, 'Ann', ['--json']);
  a.writeLine('early one');
  a.writeLine('early two');
  await connectedTo(a, 'Ben');
  await connectedTo(a, 'Cat');
  for (const p of [b, c]) await until(() => messages(p).length >= 2, 20_000, `both early lines at ${p.label}`);
  a.writeLine('later');
  for (const p of [b, c]) await until(() => messages(p).includes('later'), 20_000, `"later" at ${p.label}`);
  // Anything sent twice would have arrived by now, ahead of "later".
  assert.deepEqual(messages(b), ['early one', 'early two', 'later'], b.tail());
  assert.deepEqual(messages(c), ['early one', 'early two', 'later'], c.tail());
  const events = a.json();
  assert.deepEqual(
    events.filter((e) => e.event === 'queued').map((e) => e.text),
    ['early one', 'early two'],
    a.tail(),
  );
  const sent = events.filter((e) => e.event === 'sent').map((e) => [e.text, e.peers]);
  assert.deepEqual(sent, [
    ['early one', 2],
    ['early two', 2],
    ['later', 2],
  ]);

  // The queue was cleared once delivered: a peer joining later gets none of it.
  const d = chat(svc2, 'Dan', ['--json']);
  await connectedTo(d, 'Ann');
  await connectedTo(a, 'Dan');
  a.writeLine('welcome Dan');
  await waitForJson(d, (e) => e.event === 'message' && e.text === 'welcome Dan', 20_000);
  assert.deepEqual(messages(d), ['welcome Dan'], d.tail());
  for (const p of [a, b, c, d]) p.signal('SIGINT');
  for (const p of [a, b, c, d]) assert.equal((await p.exited).code, 0, p.tail());
});

test('chat: /who is answered locally and never sent; /quit leaves with exit 0, and only the leaver says it left', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const a = chat(svc, 'Ann');
  const b = chat(svc, 'Ben', ['--json']);
  await connectedTo(b, 'Ann');
  await waitForLine(a, (l) => l.includes('Ben joined'), 30_000, { stderr: true });
  // The measured link is rated within a sampling round or two of connecting (a `linkQuality` event).
  await waitForJson(b, (e) => e.event === 'linkQuality' && e.peer === 'Ann' && e.quality !== 'unknown', 20_000);
  a.writeLine('/who');
  await waitForLine(a, (l) => /Ben \[(good|moderate|minimal|link unknown)/.test(l), 10_000, { what: '/who answer on stdout, with the link' });
  a.writeLine('//who is there?');
  await waitForJson(b, (e) => e.event === 'message', 20_000);
  assert.deepEqual(messages(b), ['/who is there?'], b.tail());
  b.writeLine('{"not":"a command"}');
  b.writeLine('/who');
  const who = await waitForJson(b, (e) => e.event === 'who', 10_000);
  assert.deepEqual(
    (who.peers as Array<Record<string, unknown>>).map((p) => p.peer),
    ['Ann'],
  );
  assert.match(String((who.peers as Array<Record<string, unknown>>)[0]?.linkQuality), /^(good|moderate|minimal)$/);
  a.writeLine('/quit');
  assert.equal((await a.exited).code, 0, a.tail());
  assert.ok(a.stderrLines.some((l) => /you left/.test(l)), a.tail());
  assert.ok(!a.stderrLines.some((l) => /Ben left/.test(l)), `the leaver said the others left:\n${a.tail()}`);
  await waitForJson(b, (e) => e.event === 'peer' && e.peer === 'Ann' && e.state === 'notConnected', 20_000);
  b.writeLine('/quit');
  assert.equal((await b.exited).code, 0, b.tail());
  assert.deepEqual(messages(b), ['/who is there?'], b.tail());
  // Ben's own leaving: a "left" event for himself, no "notConnected" for anyone.
  assert.ok(b.json().some((e) => e.event === 'left' && e.name === 'Ben'), b.tail());
});

test('chat: two peers with one name are told apart; --timestamps', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const a = chat(svc, 'Ann', ['--timestamps']);
  const t1 = chat(svc, 'Twin', ['--json']);
  const t2 = chat(svc, 'Twin', ['--json']);
  await connectedTo(t1, 'Ann');
  await connectedTo(t2, 'Ann');
  const id1 = String(t1.json().find((e) => e.event === 'ready')?.id);
  const id2 = String(t2.json().find((e) => e.event === 'ready')?.id);
  await until(() => a.stderrLines.filter((l) => /Twin.* joined/.test(l)).length >= 2, 20_000, 'both twins joined');
  t1.writeLine('from one');
  t2.writeLine('from two');
  const l1 = await waitForLine(a, (l) => l.endsWith('from one'), 20_000);
  const l2 = await waitForLine(a, (l) => l.endsWith('from two'), 20_000);
  const label = (l: string): string => /^\[\d\d:\d\d:\d\d\] \[([^\]]+)\] /.exec(l)?.[1] ?? `(no timestamp and label in "${l}")`;
  assert.notEqual(label(l1), label(l2), a.tail());
  assert.equal(label(l1), `Twin (${id1.slice(0, 4)})`, a.tail());
  assert.equal(label(l2), `Twin (${id2.slice(0, 4)})`, a.tail());
  assert.ok(a.stderrLines.some((l) => /^\[\d\d:\d\d:\d\d\] \* Twin \(/.test(l)), a.tail());
  for (const p of [a, t1, t2]) p.signal('SIGINT');
  for (const p of [a, t1, t2]) assert.equal((await p.exited).code, 0, p.tail());
});

test('chat on a terminal: an incoming line is printed above the line being typed, which is redrawn; /quit exits 0', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const a = chatOnTty(svc, 'Ann');
  const raw = transcript(a);
  const screen = (): string[] => render(raw());
  const b = chat(svc, 'Ben', ['--json']);
  await connectedTo(b, 'Ann');
  await waitForLine(a, (l) => l.includes('Ben joined'), 30_000);
  a.child.stdin?.write('half a li');
  // Let the terminal echo it before Ben's line arrives.
  await until(() => screen().some((l) => l.endsWith('half a li')), 10_000, 'the typed text on screen');
  b.writeLine('interrupting');
  await waitForLine(a, (l) => l.includes('interrupting'), 20_000);
  await until(() => screen().at(-1)?.endsWith('half a li'), 10_000, `the typed line redrawn:\n${screen().join('\n')}`);
  const shown = screen();
  assert.ok(shown.includes('[Ben] interrupting'), `"[Ben] interrupting" is not a line of its own:\n${shown.join('\n')}`);
  a.child.stdin?.write('ne\r');
  await waitForJson(b, (e) => e.event === 'message', 20_000);
  assert.deepEqual(messages(b), ['half a line'], b.tail());
  a.child.stdin?.write('/who\r');
  await until(() => screen().some((l) => /here: .*Ben/.test(l)), 10_000, `/who answered:\n${screen().join('\n')}`);
  assert.ok(await noLineWithin(b, (l) => l.includes('"message"') && l.includes('/who'), 1000), b.tail());
  a.child.stdin?.write('/quit\r');
  assert.equal((await a.exited).code, 0, a.tail());
  assert.ok(screen().some((l) => /you left/.test(l)), screen().join('\n'));
  b.signal('SIGINT');
  assert.equal((await b.exited).code, 0, b.tail());
});

test('a chat without a key beside a chat with one is told so (never silent), both ways', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const svc = service();
  const keyed = chat(svc, 'Keyed', ['--json']);
  await waitForJson(keyed, (e) => e.event === 'ready', 30_000);
  const noKey: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete noKey.PEERLINK_PSK;
  const plain = lab.spawnNode(ns, PEERLINK_BIN, ['chat', '--insecure', '--service', svc, '--interface', 'lo', '--name', 'Plain'], { env: noKey, stdin: true, label: 'chat Plain (no key)' });
  await waitForLine(plain, (l) => /peer "Keyed" of this service uses a key/.test(l), 30_000, { stderr: true, what: 'the key note on the plain side' });
  await waitForJson(keyed, (e) => e.event === 'incompatible' && e.peer === 'Plain' && e.security === 'none', 30_000);
});
