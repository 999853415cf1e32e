/**
 * First hour, defect 2: the stream example of docs/session.md (one side pipes incoming streams
 * to stdout; the other opens a stream, ends it and closes its session) must not crash either
 * process — a graceful close by either side ends the stream — while a peer lost mid-stream is
 * an 'error' on the stream, handled as the docs show. Two processes on 127.0.0.1, no discovery.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { killAllTracked, parseJsonLine, spawnTracked, until, type TrackedProcess } from '../../harness/proc.js';

const PEER = fileURLToPath(new URL('./stream-example-peer.js', import.meta.url));

after(() => killAllTracked());

function start(cfg: Record<string, unknown>, label: string): TrackedProcess {
  return spawnTracked(process.execPath, [PEER, JSON.stringify(cfg)], { label });
}

function events(p: TrackedProcess): Array<Record<string, unknown>> {
  return p.stderrLines.map((l) => parseJsonLine(l)).filter((e): e is Record<string, unknown> => e !== undefined);
}

function has(p: TrackedProcess, ev: string, extra: Record<string, unknown> = {}): boolean {
  return events(p).some((e) => e.ev === ev && Object.entries(extra).every(([k, v]) => e[k] === v));
}

async function reader(cfg: Record<string, unknown> = {}): Promise<{ p: TrackedProcess; port: number }> {
  const p = start({ role: 'reader', ...cfg }, 'reader');
  await until(() => has(p, 'ready') || !p.running, 20_000, 'reader ready');
  const ready = events(p).find((e) => e.ev === 'ready');
  assert.ok(ready, p.tail());
  return { p, port: ready.port as number };
}

/** No uncaught exception: nothing on stderr but our JSON lines. */
function noCrash(p: TrackedProcess): void {
  const other = p.stderrLines.filter((l) => parseJsonLine(l) === undefined && l.trim() !== '');
  assert.deepEqual(other, [], `unexpected stderr (a crash?):\n${p.tail()}`);
}

test('docs example: the writer ends its stream and closes its session; both processes live on, the reader gets every byte and a clean end', async () => {
  const r = await reader();
  const w = start({ role: 'writer', port: r.port, mode: 'end' }, 'writer');
  const exit = await w.exited;
  assert.equal(exit.code, 0, w.tail());
  noCrash(w);
  assert.ok(has(w, 'closed'), w.tail());
  await until(() => has(r.p, 'stream-close') || !r.p.running, 10_000, 'the reader stream closes');
  await new Promise((res) => setTimeout(res, 500));
  assert.ok(r.p.running, `the reader crashed:\n${r.p.tail()}`);
  noCrash(r.p);
  assert.equal(r.p.stdoutLines.join('\n'), 'hello from B');
  assert.ok(has(r.p, 'stream-end'), 'the reader saw end');
  assert.ok(has(r.p, 'peer', { state: 'notConnected' }));
  await r.p.stop();
});

test('the reader closes its session while the writer is still writing: both end cleanly, no error anywhere', async () => {
  const r = await reader({ closeAfterStream: true });
  const w = start({ role: 'writer', port: r.port, mode: 'open' }, 'writer');
  const [rexit, wexit] = await Promise.all([r.p.exited, w.exited]);
  assert.equal(rexit.code, 0, r.p.tail());
  assert.equal(wexit.code, 0, w.tail());
  noCrash(r.p);
  noCrash(w);
  assert.ok(has(r.p, 'closed') && has(w, 'stream-close') && has(w, 'closed'), `${r.p.tail()}\n${w.tail()}`);
  assert.ok(r.p.stdoutLines.some((l) => l.startsWith('tick')), r.p.tail());
});

test('a writer lost mid-stream (SIGKILL) is an error on the reader\'s stream, handled as the docs show; the reader lives on', async () => {
  const r = await reader({ errorHandler: true });
  const w = start({ role: 'writer', port: r.port, mode: 'abrupt' }, 'writer');
  const exit = await w.exited;
  assert.equal(exit.signal, 'SIGKILL', w.tail());
  await until(() => has(r.p, 'stream-error') || !r.p.running, 15_000, 'stream error on the reader');
  const err = events(r.p).find((e) => e.ev === 'stream-error');
  assert.ok(err && ['ERR_CONNECTION_RESET', 'ERR_PEER_NOT_CONNECTED'].includes(err.code as string), r.p.tail());
  assert.ok(!has(r.p, 'stream-end'), 'an incomplete stream does not end cleanly');
  assert.ok(r.p.running);
  noCrash(r.p);
  assert.equal(r.p.stdoutLines[0], 'partial');
  await r.p.stop();
});
