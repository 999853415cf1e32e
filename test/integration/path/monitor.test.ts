/**
 * PathMonitor inside a network namespace: adding and removing an address, taking a link
 * down and up, adding and deleting a veth are each reported within a few seconds — with
 * netlink notifications and with the polling fallback.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../../harness/netns.js';
import { killAllTracked, waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { fixtureScript } from '../../harness/paths.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const skip = skipUnless('netns');
const labs: Lab[] = [];
const STARTUP_MS = 30_000;
/** Behaviour deadline for one change (netlink reacts in ~100 ms; polling every 500 ms here). */
const CHANGE_MS = 5_000;

after(async () => {
  await killAllTracked();
  for (const lab of labs) await lab.teardown();
});

interface MonitorEvent {
  event: string;
  kind?: string;
  name?: string;
  status?: string;
  detection?: string;
  interfaces?: string[];
  added?: string[];
  removed?: string[];
}

async function exercise(lab: Lab, mon: TrackedProcess): Promise<void> {
  const ns = lab.host(1).ns;
  const ready = await waitForJson<MonitorEvent>(mon, (e) => e.event === 'ready', STARTUP_MS, { what: 'monitor ready' });
  assert.equal(ready.status, 'satisfied');
  assert.deepEqual(ready.interfaces, ['eth0']);
  let mark = mon.stdoutLines.length;
  const next = async (pred: (e: MonitorEvent) => boolean, what: string): Promise<MonitorEvent> => {
    const e = await waitForJson<MonitorEvent>(mon, pred, CHANGE_MS, { since: mark, what });
    return e;
  };

  await lab.ip(ns, ['addr', 'add', '10.88.0.1/24', 'dev', 'eth0']);
  await next((e) => e.kind === 'addresses' && e.name === 'eth0' && (e.added ?? []).includes('10.88.0.1'), 'address added');
  mark = mon.stdoutLines.length;
  await lab.ip(ns, ['addr', 'del', '10.88.0.1/24', 'dev', 'eth0']);
  await next((e) => e.kind === 'addresses' && e.name === 'eth0' && (e.removed ?? []).includes('10.88.0.1'), 'address removed');

  mark = mon.stdoutLines.length;
  await lab.linkDown(1);
  await next((e) => e.kind === 'down' && e.name === 'eth0', 'eth0 down');
  await next((e) => e.event === 'path' && e.status !== 'satisfied', 'path not satisfied');
  mark = mon.stdoutLines.length;
  await lab.linkUp(1);
  await next((e) => e.kind === 'up' && e.name === 'eth0', 'eth0 up');
  await next((e) => e.event === 'path' && e.status === 'satisfied', 'path satisfied again');

  mark = mon.stdoutLines.length;
  await lab.ip(ns, ['link', 'add', 'vtest0', 'type', 'veth', 'peer', 'name', 'vtest1']);
  await next((e) => e.kind === 'added' && e.name === 'vtest0', 'veth added');
  mark = mon.stdoutLines.length;
  await lab.ip(ns, ['addr', 'add', '10.99.0.1/24', 'dev', 'vtest0']);
  await lab.ip(ns, ['link', 'set', 'vtest0', 'up']);
  await lab.ip(ns, ['link', 'set', 'vtest1', 'up']);
  await next((e) => e.event === 'path' && (e.interfaces ?? []).includes('vtest0'), 'veth in the path');
  mark = mon.stdoutLines.length;
  await lab.ip(ns, ['link', 'del', 'vtest0']);
  await next((e) => e.kind === 'removed' && e.name === 'vtest0', 'veth removed');
  await next((e) => e.kind === 'removed' && e.name === 'vtest1', 'veth peer removed');

  await mon.stop();
  assert.equal(mon.exitCode, 0, mon.tail());
}

test('PathMonitor reports interface changes from netlink notifications', { skip }, async (t) => {
  if (!requires(t, 'netns')) return;
  const lab = await createLab({ hosts: 1, tag: 'pmn' });
  labs.push(lab);
  // two other monitors share the netlink worker and are cancelled: it must keep serving this one
  const mon = lab.spawnNode(1, fixtureScript('path-monitor.js'), ['--detection', 'netlink', '--extra', '2']);
  await exercise(lab, mon);
  assert.ok(mon.json<MonitorEvent>().some((e) => e.event === 'ready' && e.detection === 'netlink'));
});

test('PathMonitor polling fallback reports the same changes', { skip }, async (t) => {
  if (!requires(t, 'netns')) return;
  const lab = await createLab({ hosts: 1, tag: 'pmp' });
  labs.push(lab);
  const mon = lab.spawnNode(1, fixtureScript('path-monitor.js'), ['--detection', 'poll', '--interval', '500']);
  await exercise(lab, mon);
  assert.ok(mon.json<MonitorEvent>().some((e) => e.event === 'ready' && e.detection === 'poll'));
});
