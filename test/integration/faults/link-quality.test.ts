/**
 * Link quality under a real fault, in the fault lab (test/harness/faultlab.ts): two sessions
 * in two namespaces, A pumping a stream to B and sending it datagrams. The link to B is then
 * throttled hard with loss — tbf at 256 kbit/s (200 ms of queue) both ways and 10 % random
 * loss by nft both ways, on B's side — and A must rate B 'minimal' (from its TCP connections),
 * B must see the datagram loss (sequence gaps); once the shaping is removed, A rates B 'good'
 * again; a cut (on the switch side) makes it 'minimal' too (PINGs unanswered), and 'good' after
 * it. Reaction times are reported as diagnostics; the deadlines here are generous (a
 * loaded 2-core machine), the fake-time unit tests pin the estimator's own reaction time
 * (test/unit/session/link-quality.test.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { requires } from '../../harness/prereq.js';
import type { Lab } from '../../harness/netns.js';
import { createFaultLab, type FaultLab } from '../../harness/faultlab.js';
import { killAllTracked, type TrackedProcess } from '../../harness/proc.js';
import { events, waitEv, type Ev } from '../session/peers.js';

const FIXTURE = fileURLToPath(new URL('./link-quality-peer.js', import.meta.url));
const PORT = 7100;

let fl: FaultLab | undefined;
after(async () => {
  await killAllTracked();
  await fl?.lab.teardown();
});

function start(l: Lab, h: number, cfg: Record<string, unknown>): TrackedProcess {
  return l.spawnNode(h, FIXTURE, [JSON.stringify(cfg)], { stdin: true, label: `h${h}: ${String(cfg.name)}` });
}

function qualityLog(p: TrackedProcess, since: number): string {
  return events(p, since)
    .filter((e) => e.ev === 'linkQuality')
    .map((e) => `${e.t}: ${String(e.quality)} ${JSON.stringify(e.report)}`)
    .join('\n');
}

test('a link throttled hard with loss is rated minimal, and good again once the shaping is removed; a cut is minimal too', { timeout: 240_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft')) return;
  fl = await createFaultLab({ hosts: 2, tag: 'flq' });
  const lab = fl.lab;
  const psk = randomBytes(32).toString('hex');
  // Liveness is not under test: a long keepalive timeout keeps the peer through the worst of it,
  // and a long viability grace keeps B from dropping A when the switch-side cut takes its
  // carrier away (the 3 s default raced the restore on a loaded machine).
  const common = { psk, keepaliveTimeout: 60_000, viabilityGrace: 30_000 };
  const b = start(lab, 2, { ...common, name: 'B', port: PORT });
  const a = start(lab, 1, { ...common, name: 'A' });
  const rb = await waitEv(b, (e) => e.ev === 'ready', 30_000, 'B ready');
  await waitEv(a, (e) => e.ev === 'ready', 30_000, 'A ready');
  const bId = rb.id as string;
  const isB = (q: string) => (e: Ev) => e.ev === 'linkQuality' && e.peer === bId && e.quality === q;
  a.writeLine(JSON.stringify({ cmd: 'connect', host: lab.host(2).ipv4, port: PORT }));
  await waitEv(a, (e) => e.ev === 'connected', 30_000, 'A connected to B');
  await waitEv(a, isB('good'), 30_000, 'B rated good before the fault');
  // The link is measured by using it: A keeps a stream to B busy from here on.
  a.writeLine(JSON.stringify({ cmd: 'pump' }));
  await waitEv(a, (e) => e.ev === 'pumping', 15_000, 'A pumping');
  a.writeLine(JSON.stringify({ cmd: 'datagrams' }));
  await new Promise((r) => setTimeout(r, 2000));

  const shapedMark = a.stdoutLines.length;
  const shapedAt = Date.now();
  // tbf both ways on B's link (its eth0, and its port on the switch), 10 % random loss both ways.
  const shaping = await fl.shape(2, { rate: '256kbit', burst: '4kb', latency: '200ms', direction: 'both' });
  const loss = await fl.loss(2, 10, { direction: 'both' });
  const down = await waitEv(a, isB('minimal'), 30_000, `minimal under the throttle\n${a.tail()}`, shapedMark).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\nratings:\n${qualityLog(a, 0)}`);
  });
  t.diagnostic(`minimal ${down.t - shapedAt} ms after the shaping: ${JSON.stringify(down.report)}`);
  // Nothing better than minimal while the shaping holds.
  await new Promise((r) => setTimeout(r, 5000));
  const during = events(a, shapedMark).filter((e) => e.ev === 'linkQuality' && e.peer === bId);
  assert.equal(during.at(-1)?.quality, 'minimal', qualityLog(a, shapedMark));
  // B receives A's datagrams through the same loss: it measures the gaps.
  const reportMark = b.stdoutLines.length;
  b.writeLine(JSON.stringify({ cmd: 'report' }));
  const rep = await waitEv(b, (e) => e.ev === 'report', 10_000, 'B report', reportMark);
  t.diagnostic(`B's view of A under the shaping: ${JSON.stringify(rep.report)} datagrams ${JSON.stringify(rep.datagrams)}`);
  const seen = rep.report as { lossRate: number; quality: string };
  assert.ok(seen.lossRate > 0.03, `B measured datagram loss ${seen.lossRate}: ${JSON.stringify(rep)}`);

  const clearMark = a.stdoutLines.length;
  const clearedAt = Date.now();
  await loss.remove();
  await shaping.remove();
  const up = await waitEv(a, isB('good'), 60_000, 'good once the shaping is removed', clearMark).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\nratings:\n${qualityLog(a, clearMark)}`);
  });
  t.diagnostic(`good ${up.t - clearedAt} ms after the shaping was removed: ${JSON.stringify(up.report)}`);
  // A cut on the switch side (B's host notices nothing): A's PINGs go unanswered → stalled → minimal.
  const cutMark = a.stdoutLines.length;
  const cutAt = Date.now();
  await fl.cut(2, 'switch');
  const stalled = await waitEv(a, isB('minimal'), 20_000, 'minimal during a cut', cutMark).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\nratings:\n${qualityLog(a, cutMark)}`);
  });
  t.diagnostic(`minimal ${stalled.t - cutAt} ms into a cut: ${JSON.stringify(stalled.report)}`);
  const restoredMark = a.stdoutLines.length;
  await fl.restore(2);
  await waitEv(a, isB('good'), 60_000, 'good after the cut', restoredMark);
  for (const line of qualityLog(a, 0).split('\n')) t.diagnostic(line);
  // The peer stayed connected throughout: the ratings describe a live link.
  assert.equal(events(a).filter((e) => e.ev === 'peer' && e.state === 'notConnected').length, 0, a.tail());

  for (const p of [a, b]) p.writeLine(JSON.stringify({ cmd: 'close' }));
  await Promise.all([a, b].map((p) => waitEv(p, (e) => e.ev === 'closed', 15_000, 'closed')));
});
