// The CLI progress renderer: bars only on a TTY, colours only without NO_COLOR, few lines otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ProgressRenderer, formatBytes, formatDuration, printable, progressStyle } from '../../../src/cli/progress.js';

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

test('formatting helpers', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(64 * 1024 * 1024), '64.0 MiB');
  assert.equal(formatDuration(5), '5s');
  assert.equal(formatDuration(65), '1m05s');
  assert.equal(formatDuration(3700), '1h01m');
  assert.equal(printable('a\u001b[2Jb\nc'), 'a\\u001b[2Jb\\u000ac');
});

test('style: colours only on a TTY and never with NO_COLOR', () => {
  assert.deepEqual([progressStyle(new Capture(true), {}).tty, progressStyle(new Capture(true), {}).color], [true, true]);
  assert.equal(progressStyle(new Capture(true), { NO_COLOR: '1' }).color, false);
  assert.equal(progressStyle(new Capture(false), {}).color, false);
  assert.equal(progressStyle(new Capture(false), {}).tty, false);
});

test('no TTY: one start line and one end line, no escape sequences', async () => {
  const out = new Capture(false);
  const r = new ProgressRenderer(out, {});
  const task = r.start('file.bin', 1000, 'sending file.bin');
  for (let i = 1; i <= 10; i++) task.update({ bytes: i * 100, total: 1000, rate: 5000 });
  await new Promise((res) => setTimeout(res, 150));
  task.finish(true, 'sent file.bin');
  r.close();
  assert.equal(out.text, 'sending file.bin\n✓ sent file.bin\n');
});

test('TTY: a redrawn bar with bytes, rate and ETA, cleared at the end', async () => {
  const out = new Capture(true);
  const r = new ProgressRenderer(out, { NO_COLOR: '1' }, { columns: 100 });
  const task = r.start('file.bin', 10 * 1024 * 1024);
  task.update({ bytes: 5 * 1024 * 1024, total: 10 * 1024 * 1024, rate: 1024 * 1024 });
  await new Promise((res) => setTimeout(res, 150));
  assert.match(out.text, /file\.bin +█+░+ +50% +5\.00 MiB of 10\.0 MiB +1\.00 MiB\/s +ETA 5s/);
  assert.ok(!out.text.includes('\u001b[32m'), 'no colour with NO_COLOR');
  r.log('a log line');
  task.finish(true, 'done');
  r.close();
  assert.match(out.text, /a log line\n/);
  assert.match(out.text, /✓ done\n/);
  for (const line of r.barLine(task).split('\n')) assert.ok(line.length < 100);
});
