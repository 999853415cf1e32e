/**
 * `peerlink interfaces` inside a namespace host: the veth is listed as a wired, default
 * interface with its IPv4, ULA and link-local addresses; `--watch --json` reports the link
 * going down and up.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../../harness/netns.js';
import { killAllTracked, waitForJson } from '../../harness/proc.js';
import { PEERLINK_BIN } from '../../harness/paths.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

interface IfaceJson {
  name: string;
  index: number;
  type: string;
  up: boolean;
  running: boolean;
  multicast: boolean;
  default: boolean;
  mac?: string;
  addresses: { family: string; address: string; prefixLength: number; scope: string; scopeId?: number }[];
}

test('peerlink interfaces --json in a namespace host, and --watch sees the link go down and up', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await createLab({ hosts: 1, tag: 'pif' });
  const h = lab.host(1);
  const r = await lab.exec(h, process.execPath, [PEERLINK_BIN, 'interfaces', '--json']);
  const list = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as IfaceJson);
  assert.deepEqual(list.map((i) => i.name).sort(), ['eth0', 'lo']);
  const eth = list.find((i) => i.name === 'eth0') as IfaceJson;
  assert.equal(eth.type, 'wiredEthernet');
  assert.ok(eth.up && eth.running && eth.multicast && eth.default);
  assert.equal(eth.mac, h.mac);
  assert.ok(eth.addresses.some((a) => a.family === 'IPv4' && a.address === h.ipv4 && a.prefixLength === 24 && a.scope === 'global'));
  assert.ok(eth.addresses.some((a) => a.family === 'IPv6' && a.address === h.ipv6 && a.prefixLength === 64));
  const ll = eth.addresses.find((a) => a.scope === 'link');
  assert.equal(ll?.scopeId, eth.index);
  const lo = list.find((i) => i.name === 'lo') as IfaceJson;
  assert.equal(lo.type, 'loopback');
  assert.equal(lo.default, false);

  const human = await lab.exec(h, process.execPath, [PEERLINK_BIN, 'interfaces']);
  assert.match(human.stdout, /^\*eth0 +\d+ +wiredEthernet +up /m);

  const watch = lab.spawnNode(h, PEERLINK_BIN, ['interfaces', '--watch', '--json']);
  await waitForJson(watch, (e) => e.event === 'path' && e.status === 'satisfied', 30_000, { what: 'initial path' });
  await lab.linkDown(h);
  await waitForJson(watch, (e) => e.event === 'change' && e.kind === 'down', 5_000, { what: 'down' });
  await waitForJson(watch, (e) => e.event === 'path' && e.status !== 'satisfied', 5_000, { what: 'path not satisfied' });
  const mark = watch.stdoutLines.length;
  await lab.linkUp(h);
  await waitForJson(watch, (e) => e.event === 'change' && e.kind === 'up', 5_000, { since: mark, what: 'up' });
  await waitForJson(watch, (e) => e.event === 'path' && e.status === 'satisfied', 5_000, { since: mark, what: 'path satisfied' });
  watch.signal('SIGINT');
  assert.equal((await watch.exited).code, 0, watch.tail());
});
