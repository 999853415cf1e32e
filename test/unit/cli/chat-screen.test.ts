// The pieces of `peerlink chat` that need no network: the names shown for peers, and the
// screen (prompt redrawn around incoming lines; timestamps). End to end: test/integration/cli-chat.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { PeerID } from '../../../src/session/index.js';
import { ChatNames } from '../../../src/cli/chat-names.js';
import { ChatScreen, clockStamp } from '../../../src/cli/chat-screen.js';

const id = (hex4: string, rest = '0000-4000-8000-000000000000'): string => `${hex4}${'0'.repeat(4)}-${rest}`;

test('chat names: unique names as they are; namesakes (and our own name) get a stable id suffix', () => {
  const me = PeerID.fromString(id('aaaa'), 'Ann');
  const names = new ChatNames(me);
  const bob = PeerID.fromString(id('b0b1'), 'Bob');
  assert.deepEqual(names.add(bob), []);
  assert.equal(names.label(bob), 'Bob');
  const bob2 = PeerID.fromString(id('c0c1'), 'Bob');
  const changed = names.add(bob2);
  assert.deepEqual(
    changed.map((c) => [c.from, c.to]),
    [['Bob', 'Bob (b0b1)']],
  );
  assert.equal(names.label(bob), 'Bob (b0b1)');
  assert.equal(names.label(bob2), 'Bob (c0c1)');
  // Another Ann is told apart from us.
  assert.equal(names.label(PeerID.fromString(id('dddd'), 'Ann')), 'Ann (dddd)');
  // Ids that share their first four hex digits get longer suffixes.
  const x1 = PeerID.fromString('12345678-0000-4000-8000-000000000000', 'X');
  const x2 = PeerID.fromString('1234abcd-0000-4000-8000-000000000000', 'X');
  names.add(x1);
  names.add(x2);
  assert.notEqual(names.label(x1), names.label(x2));
  assert.equal(names.label(x2), 'X (1234abcd)');
});

function terminal(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  return { out, text: () => text };
}

test('chat screen on a terminal: an incoming line erases the prompt and partial line, then they are redrawn', async () => {
  const input = new PassThrough();
  const tty = terminal();
  const screen = new ChatScreen({ input, stdout: tty.out, stderr: tty.out, interactive: true, timestamps: false });
  const lines: string[] = [];
  screen.onLine((l) => lines.push(l));
  input.write('hal');
  await new Promise((r) => setImmediate(r));
  const before = tty.text().length;
  screen.print('[Bob] hi');
  const after = tty.text().slice(before);
  // erase (column 1, clear below), the line, then the prompt and "hal" again
  // eslint-disable-next-line no-control-regex
  assert.match(after, /^\u001b\[1G\u001b\[0J\[Bob\] hi\n\u001b\[1G\u001b\[0J> hal/);
  input.write('f\r');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(lines, ['half']);
  screen.close();
});

test('chat screen without a terminal: plain lines, with --timestamps a [HH:MM:SS] prefix', () => {
  const input = new PassThrough();
  const out = terminal();
  const err = terminal();
  const at = new Date(2026, 0, 2, 3, 4, 5);
  const screen = new ChatScreen({ input, stdout: out.out, stderr: err.out, interactive: false, timestamps: true, now: () => at });
  screen.print('[Bob] hi');
  screen.note('* Bob joined');
  assert.equal(out.text(), '[03:04:05] [Bob] hi\n');
  assert.equal(err.text(), '[03:04:05] * Bob joined\n');
  assert.equal(clockStamp(new Date(2026, 0, 2, 23, 59, 0)), '[23:59:00]');
  screen.close();
});
