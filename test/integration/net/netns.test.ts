// Two hosts in network namespaces: IPv6 link-local with scope, interface pinning, viability.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createLab, type Lab } from '../../harness/netns.js';
import { killAllTracked, waitForJson } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const PEER = fileURLToPath(new URL('./fixtures/net-peer.js', import.meta.url));
const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 2, tag: 'net' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

interface Ev {
  event: string;
  port?: number;
  viable?: boolean;
  data?: string;
  state?: string;
  path?: { localEndpoint: { host: string }; remoteEndpoint: { host: string; interface?: string }; interface?: { name: string; mtu: number }; interfaceSource: string; status: string };
}

test('IPv6 link-local with scope, pinning to eth0, viability when the link goes down and back', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const server = lab.spawnNode(1, PEER, ['listen', '0']);
  const { port } = await waitForJson<Ev>(server, (e) => e.event === 'listening', 30_000);
  const ll = await lab.linkLocal(1);

  // link-local with its zone
  const a = lab.spawnNode(2, PEER, ['connect', `${ll.split('%')[0]}%eth0`, String(port)], { stdin: true });
  const ready = await waitForJson<Ev>(a, (e) => e.event === 'ready', 30_000);
  assert.equal(ready.path?.interface?.name, 'eth0');
  assert.equal(ready.path?.remoteEndpoint.interface, 'eth0');
  assert.equal(ready.path?.remoteEndpoint.host, ll.split('%')[0]);
  a.writeLine('over link-local');
  assert.equal((await waitForJson<Ev>(a, (e) => e.event === 'reply', 30_000)).data, 'over link-local');

  // pinned to eth0 by requiredInterface, IPv4
  const h1 = lab.host(1);
  const b = lab.spawnNode(2, PEER, ['connect', h1.ipv4 ?? '', String(port), 'eth0'], { stdin: true });
  const pinned = await waitForJson<Ev>(b, (e) => e.event === 'ready', 30_000);
  assert.equal(pinned.path?.interface?.name, 'eth0');
  assert.equal(pinned.path?.interfaceSource, 'pinned');

  assert.equal(pinned.path?.status, 'satisfied');

  // viability and the path follow the link
  let mark = b.stdoutLines.length;
  await lab.linkDown(2, 'host');
  assert.equal((await waitForJson<Ev>(b, (e) => e.event === 'viability', 30_000)).viable, false);
  assert.equal((await waitForJson<Ev>(b, (e) => e.event === 'path', 30_000, { since: mark })).path?.status, 'unsatisfied');
  mark = b.stdoutLines.length;
  await lab.linkUp(2, 'host');
  await waitForJson<Ev>(b, (e) => e.event === 'viability' && e.viable === true, 30_000, { since: mark });
  assert.equal((await waitForJson<Ev>(b, (e) => e.event === 'path', 30_000, { since: mark })).path?.status, 'satisfied');
  // an MTU change on the interface is a new path too
  mark = b.stdoutLines.length;
  await lab.exec(2, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '1280']);
  const smaller = await waitForJson<Ev>(b, (e) => e.event === 'path' && e.path?.interface?.mtu === 1280, 30_000, { since: mark });
  assert.equal(smaller.path?.status, 'satisfied');
  assert.equal(smaller.path?.interface?.name, 'eth0');
  // Carrier lost (the switch side goes down; eth0 stays administratively up): unsatisfied, and
  // an MTU change meanwhile does not make it satisfied.
  mark = b.stdoutLines.length;
  await lab.linkDown(2, 'switch');
  assert.equal((await waitForJson<Ev>(b, (e) => e.event === 'path', 30_000, { since: mark })).path?.status, 'unsatisfied');
  mark = b.stdoutLines.length;
  await lab.exec(2, 'ip', ['link', 'set', 'dev', 'eth0', 'mtu', '1400']);
  const meanwhile = await waitForJson<Ev>(b, (e) => e.event === 'path' && e.path?.interface?.mtu === 1400, 30_000, { since: mark });
  assert.equal(meanwhile.path?.status, 'unsatisfied');
  mark = b.stdoutLines.length;
  await lab.linkUp(2, 'switch');
  assert.equal((await waitForJson<Ev>(b, (e) => e.event === 'path', 30_000, { since: mark })).path?.status, 'satisfied');
  b.writeLine('after the flap');
  assert.equal((await waitForJson<Ev>(b, (e) => e.event === 'reply' && e.data === 'after the flap', 60_000)).data, 'after the flap');
});

test('Happy Eyeballs: an address that never answers does not hold the race up', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const server = lab.spawnNode(1, PEER, ['listen', '0']);
  const { port } = await waitForJson<Ev>(server, (e) => e.event === 'listening', 30_000);
  // fd77::99 is on the lab's link but nobody has it: neighbour discovery stalls for seconds.
  const h1 = lab.host(1);
  const r = lab.spawnNode(2, PEER, ['race', String(port), 'fd77::99', h1.ipv4 ?? '']);
  const won = await waitForJson<Ev & { address: string; ms: number; attempts: number }>(r, (e) => e.event === 'won', 30_000);
  assert.equal(won.address, h1.ipv4);
  assert.equal(won.attempts, 2);
  // the IPv4 attempt started after the 250 ms stagger, long before the IPv6 one gave up
  assert.ok(won.ms >= 240, `won after ${won.ms} ms`);
});

test('connectionDropTime: unacknowledged data fails the connection (TCP_USER_TIMEOUT)', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const server = lab.spawnNode(1, PEER, ['listen', '0']);
  const { port } = await waitForJson<Ev>(server, (e) => e.event === 'listening', 30_000);
  const h1 = lab.host(1);
  const c = lab.spawnNode(2, PEER, ['droptime', h1.ipv4 ?? '', String(port), '1500']);
  await waitForJson<Ev>(c, (e) => e.event === 'ready', 30_000);
  await lab.linkDown(1, 'switch');
  try {
    const ev = await waitForJson<Ev & { code?: string }>(c, (e) => e.event === 'state' && e.state === 'failed', 30_000);
    assert.equal(ev.code, 'ERR_CONNECTION_TIMEOUT');
  } finally {
    await lab.linkUp(1, 'switch');
  }
});
