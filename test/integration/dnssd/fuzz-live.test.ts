/**
 * 100,000 hostile packets over real sockets at a running advertiser and browser (CLI
 * processes in namespace hosts): neither crashes or grows without bound, and both keep
 * working for everyone afterwards (bad packets are dropped; senders are not banned).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createLab, type Lab } from '../../harness/netns.js';
import { killAllTracked, waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { PEERLINK_BIN, REPO_ROOT } from '../../harness/paths.js';

const SENDER = `${REPO_ROOT}/dist/test/integration/dnssd/fuzz-sender.js`;
const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 3, tag: 'dnsfz' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

function rssKiB(p: TrackedProcess): number {
  // the CLI runs as `node bin/peerlink.js` directly under `ip netns exec` (which execs)
  const status = readFileSync(`/proc/${p.pid as number}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

test('advertiser and browser survive 100,000 hostile packets and keep working', { skip, timeout: 600_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const peerlink = (h: number, args: string[]): TrackedProcess => (lab as Lab).spawnNode(h, PEERLINK_BIN, args);
  const adv = peerlink(1, ['advertise', 'Victim', '_fuzz._tcp', '4000', 'v=1', '--json', '--host', 'victim', '--verbose']);
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const browse = peerlink(2, ['browse', '_fuzz._tcp', '--json']);
  await waitForJson(browse, (e) => e.event === 'added' && e.name === 'Victim', 30_000);
  const rssBefore = rssKiB(adv);

  const sender = lab.spawnNode(3, SENDER, ['100000', '10.77.0.1', '10.77.0.3']);
  const done = await waitForJson<{ event: string; sent: number }>(sender, (e) => e.event === 'done', 300_000);
  assert.equal(done.sent, 100_000);
  assert.ok(adv.running, adv.tail());
  assert.ok(browse.running, browse.tail());
  const rssAfter = rssKiB(adv);
  assert.ok(rssAfter < rssBefore + 150 * 1024, `advertiser RSS ${rssBefore} -> ${rssAfter} KiB`);

  // the fuzz packets claim records under the victim's name, which is a real conflict: the
  // advertiser may have renamed itself ('Victim (2)'); it must be registered under its last name
  const lastName = (): string | undefined => adv.json<{ event: string; name: string }>().filter((e) => e.event === 'registered').pop()?.name;
  // the advertiser still answers a new browser
  const fresh = peerlink(3, ['browse', '_fuzz._tcp', '--json', '--timeout', '120']);
  await waitForJson(fresh, (e) => e.event === 'added' && e.name === lastName() && e.port === 4000, 60_000);
  // and the fuzzed browser still sees a new advertisement
  const late = peerlink(3, ['advertise', 'After Fuzz', '_fuzz._tcp', '4001', '--json', '--host', 'late']);
  await waitForJson(late, (e) => e.event === 'registered', 60_000);
  await waitForJson(browse, (e) => e.event === 'added' && e.name === 'After Fuzz', 60_000);
  for (const p of [adv, browse, late]) {
    p.signal('SIGINT');
    assert.equal((await p.exited).code, 0, p.tail());
  }
  await fresh.stop();
  // the advertiser really took the hits (the kernel drops what it cannot queue)
  const statsLine = adv.stderrLines.find((l) => l.startsWith('mdns stats: '));
  assert.ok(statsLine, adv.tail());
  const stats = JSON.parse(statsLine.slice('mdns stats: '.length)) as { received: number; malformed: number };
  t.diagnostic(statsLine);
  assert.ok(stats.received > 10_000 && stats.malformed > 5_000, statsLine);
});
