/**
 * The IPv4 and IPv6 copies of a dual-stack responder's announcements and answers, over real
 * sockets between two namespace hosts: the browser decodes one of each pair (the transport's
 * `twins` counter) and still resolves the instance with the addresses of both families
 * (family-twins.ts). The advertiser is the `peerlink advertise` CLI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../../harness/netns.js';
import { killAllTracked, waitForJson } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { PEERLINK_BIN, fixtureScript } from '../../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 2, tag: 'twins' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

test('a dual-stack responder\'s IPv4 and IPv6 copies are decoded once; the instance resolves with both families\' addresses', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const adv = lab.spawnNode(1, PEERLINK_BIN, ['advertise', 'Twins', '_twins._tcp', '8080', '--json', '--host', 'h1']);
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const browser = lab.spawnNode(2, fixtureScript('mdns-browse-stats.js'), ['--interface', 'eth0', '--type', '_twins._tcp', '--settle', '4000']);
  const added = await waitForJson<{ ev: string; addresses: string[] }>(browser, (e) => e.ev === 'added', 30_000);
  assert.ok(added.addresses.includes('10.77.0.1'), JSON.stringify(added));
  const { stats, services } = await waitForJson<{ ev: string; stats: { received: number; twins: number; malformed: number }; services: Array<{ name: string; addresses: string[] }> }>(browser, (e) => e.ev === 'stats', 30_000);
  t.diagnostic(`received ${stats.received}, twins dropped ${stats.twins}`);
  assert.equal(services.length, 1);
  assert.equal(stats.malformed, 0);
  // the browser's first query goes over IPv4 alone, later ones over both: their answers (and
  // the advertiser's announcements heard after the browser started) come in pairs
  assert.ok(stats.twins >= 1, `twins ${stats.twins} of ${stats.received} received`);
  assert.ok(stats.twins < stats.received / 2 + 1, `twins ${stats.twins} of ${stats.received}`);
});
