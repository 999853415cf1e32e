/**
 * ours <-> python-zeroconf between network-namespace hosts, both ways: zeroconf sees our
 * service with its TXT and its removal within 2 s of our stop; we see zeroconf's; TXT
 * updates on either side arrive as `updated` / `changed`; a name conflict ends with exactly
 * one renamed and both visible to a third host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../harness/netns.js';
import { waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { zeroconfBrowse, zeroconfPublish, zeroconfReady, zeroconfRegistered, type ZeroconfBrowseEvent, type ZeroconfPublishEvent } from '../../harness/zeroconf.js';
import {
  DISCOVERY_MS,
  STARTUP_MS,
  isRenamedFrom,
  oursAdvertise,
  oursAdvertiseUpdatable,
  oursBrowse,
  registered,
  waitAdded,
  withCapture,
  type AdvertiseLine,
  type BrowseLine,
} from './peers.js';
import { useLab } from './lab.js';

const skip = skipUnless('netns', 'zeroconf');
let lab: Lab | undefined;
/** Every mDNS packet on the bridge, quoted in a failure message (withCapture). */
let sniffer: TrackedProcess | undefined;

useLab(skip, { hosts: 3, tag: 'izc' }, async (l) => {
  lab = l;
  sniffer = await l.sniffMdns();
});

const T = { timeout: 300_000 };

test('python-zeroconf sees our service with its TXT, and its removal within 2 s of stop', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'zeroconf') || !lab) return;
  const type = '_plzc1._tcp';
  const zc = zeroconfBrowse(lab, 2, type);
  await zeroconfReady(zc, STARTUP_MS);
  const ours = oursAdvertise(lab, 1, 'Ours Gamma', type, 4201, ['v=1', 'id=xyz', 'flag', 'sp=two words'], { host: 'ours-h1' });
  assert.equal(await registered(ours), 'Ours Gamma');
  const seen = await withCapture(sniffer, type, waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'added' && e.name === 'Ours Gamma', DISCOVERY_MS, { what: 'zeroconf added' }));
  assert.equal(seen.type, type);
  assert.equal(seen.port, 4201);
  assert.equal(seen.server, 'ours-h1.local.');
  assert.deepEqual(seen.txt, { v: '1', id: 'xyz', flag: null, sp: 'two words' });
  assert.ok(seen.addresses?.includes(lab.host(1).ipv4 ?? ''), `addresses ${JSON.stringify(seen.addresses)}`);

  const mark = zc.stdoutLines.length;
  const t0 = Date.now();
  ours.signal('SIGTERM');
  await withCapture(sniffer, type, waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'removed' && e.name === 'Ours Gamma', 2_000, { since: mark, what: 'zeroconf removed within 2 s' }));
  t.diagnostic(`zeroconf saw the removal ${Date.now() - t0} ms after SIGTERM`);
  assert.equal((await ours.exited).code, 0, ours.tail());
});

test('we see a python-zeroconf service (TXT, host, port, address) and its removal', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'zeroconf') || !lab) return;
  const type = '_plzc2._tcp';
  const browse = oursBrowse(lab, 1, type);
  const pub = zeroconfPublish(lab, 2, 'Zeroconf Delta', type, 4202, ['a=1', 'b=two words', 'bare'], { server: 'zc-h2.local.', addresses: [lab.host(2).ipv4 ?? '', lab.host(2).ipv6 ?? ''] });
  assert.equal(await zeroconfRegistered(pub, STARTUP_MS), 'Zeroconf Delta');
  const added = await withCapture(sniffer, type, waitAdded(browse, 'Zeroconf Delta', STARTUP_MS));
  assert.equal(added.type, type);
  assert.equal(added.domain, 'local');
  assert.equal(added.host, 'zc-h2.local');
  assert.equal(added.port, 4202);
  assert.equal(added.interface, 'eth0');
  assert.deepEqual(added.txt, { a: '1', b: 'two words', bare: null });
  assert.ok(added.addresses?.includes(lab.host(2).ipv4 ?? ''), `addresses ${JSON.stringify(added.addresses)}`);
  assert.ok(added.addresses?.includes(lab.host(2).ipv6 ?? ''), `addresses ${JSON.stringify(added.addresses)}`);

  const mark = browse.stdoutLines.length;
  const t0 = Date.now();
  await pub.stop();
  await withCapture(sniffer, type, waitForJson<BrowseLine>(browse, (e) => e.event === 'removed' && e.name === 'Zeroconf Delta', 5_000, { since: mark, what: '"removed" Zeroconf Delta' }));
  t.diagnostic(`we saw the removal ${Date.now() - t0} ms after zeroconf's stop`);
});

test('a TXT update of ours reaches python-zeroconf as "updated"', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'zeroconf') || !lab) return;
  const type = '_plzc3._tcp';
  const zc = zeroconfBrowse(lab, 2, type);
  await zeroconfReady(zc, STARTUP_MS);
  const ours = oursAdvertiseUpdatable(lab, 1, 'Ours Changing', type, 4203, ['v=1'], { host: 'ours-h1' });
  await registered(ours);
  await waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'added' && e.name === 'Ours Changing' && e.txt?.v === '1', DISCOVERY_MS);
  const mark = zc.stdoutLines.length;
  ours.writeLine('update v=2 extra=yes');
  const upd = await withCapture(sniffer, type, waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'updated' && e.name === 'Ours Changing' && e.txt?.v === '2', 10_000, { since: mark, what: 'zeroconf updated v=2' }));
  assert.deepEqual(upd.txt, { v: '2', extra: 'yes' });
  await ours.stop();
});

test('a TXT update by python-zeroconf reaches us as "changed"', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'zeroconf') || !lab) return;
  const type = '_plzc4._tcp';
  const browse = oursBrowse(lab, 1, type);
  const pub = zeroconfPublish(lab, 2, 'Zeroconf Changing', type, 4204, ['v=1'], { server: 'zc-h2.local.', addresses: [lab.host(2).ipv4 ?? ''] });
  await zeroconfRegistered(pub, STARTUP_MS);
  await withCapture(sniffer, type, waitAdded(browse, 'Zeroconf Changing', STARTUP_MS, (e) => e.txt?.v === '1'));
  const mark = browse.stdoutLines.length;
  pub.writeLine('update v=2 extra=yes');
  await waitForJson<ZeroconfPublishEvent>(pub, (e) => e.event === 'updated', 10_000);
  const changed = await withCapture(sniffer, type, waitForJson<BrowseLine>(browse, (e) => e.event === 'changed' && e.name === 'Zeroconf Changing', 10_000, { since: mark, what: '"changed" from zeroconf' }));
  assert.deepEqual(changed.txt, { v: '2', extra: 'yes' });
  assert.equal(changed.port, 4204);
  await pub.stop();
});

test('name conflict with python-zeroconf: exactly one renames, a third host sees both', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'zeroconf') || !lab) return;
  const type = '_plzc5._tcp';
  const browse = oursBrowse(lab, 3, type);
  const zcBrowse = zeroconfBrowse(lab, 3, type);
  await zeroconfReady(zcBrowse, STARTUP_MS);
  const pub = zeroconfPublish(lab, 2, 'Clash', type, 4205, ['who=zc'], { server: 'zc-h2.local.', addresses: [lab.host(2).ipv4 ?? ''] });
  const ours = oursAdvertise(lab, 1, 'Clash', type, 4206, ['who=ours'], { host: 'ours-h1' });
  const [zcName] = await Promise.all([zeroconfRegistered(pub, STARTUP_MS), registered(ours)]);
  const oursName =
    ours
      .json<AdvertiseLine>()
      .filter((e) => e.event === 'registered')
      .pop()?.name ?? '';
  t.diagnostic(`zeroconf: "${zcName}", ours: "${oursName}"`);
  assert.notEqual(zcName, oursName, 'different final names');
  const renamed = [zcName, oursName].filter((n) => n !== 'Clash');
  assert.equal(renamed.length, 1, `exactly one renamed: ${zcName} / ${oursName}`);
  assert.ok(isRenamedFrom(renamed[0] ?? '', 'Clash'), `renamed form: ${renamed[0]}`);
  const z = await withCapture(sniffer, type, waitAdded(browse, zcName, DISCOVERY_MS));
  const o = await withCapture(sniffer, type, waitAdded(browse, oursName, DISCOVERY_MS));
  assert.equal(z.txt?.who, 'zc');
  assert.equal(o.txt?.who, 'ours');
  // the third host's zeroconf agrees
  await waitForJson<ZeroconfBrowseEvent>(zcBrowse, (e) => e.event === 'added' && e.name === zcName && e.txt?.who === 'zc', DISCOVERY_MS);
  await waitForJson<ZeroconfBrowseEvent>(zcBrowse, (e) => e.event === 'added' && e.name === oursName && e.txt?.who === 'ours', DISCOVERY_MS);
});
