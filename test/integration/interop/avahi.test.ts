/**
 * ours <-> Avahi between network-namespace hosts: Avahi (h2) sees our service with the
 * right TXT, we see avahi-publish-service's, our goodbye removes it from Avahi within 2 s,
 * a TXT update reaches Avahi, and a name conflict with Avahi ends with exactly one side
 * renamed and both visible to a third host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../harness/netns.js';
import { startAvahi, parseAvahiBrowseLine, type Avahi } from '../../harness/avahi.js';
import { sleep, until, waitForJson, waitForLine } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { PEERLINK_BIN } from '../../harness/paths.js';
import {
  DISCOVERY_MS,
  STARTUP_MS,
  avahiRemoved,
  avahiResolved,
  isRenamedFrom,
  oursAdvertise,
  oursAdvertiseUpdatable,
  oursBrowse,
  registered,
  txtSet,
  waitAdded,
  type AdvertiseLine,
  type BrowseLine,
} from './peers.js';
import { useLab, startAvahiH2 } from './lab.js';

const skip = skipUnless('netns', 'avahi');
let lab: Lab | undefined;
let avahi: Avahi | undefined;

useLab(skip, { hosts: 3, tag: 'iava' }, async (l, avahis) => {
  lab = l;
  avahi = await startAvahiH2(l, avahis);
});

const T = { timeout: 300_000 };

test('Avahi (avahi-browse -rpt) sees our service with the right TXT, host, port and address', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava1._tcp';
  const ours = oursAdvertise(lab, 1, 'Ours Alpha', type, 4101, ['v=1', 'id=abc', 'flag', 'sp=two words'], { host: 'ours-h1' });
  assert.equal(await registered(ours), 'Ours Alpha');

  const lines = await avahi.browseOnce(type);
  const v4 = lines.find((l) => l.kind === '=' && l.name === 'Ours Alpha' && l.protocol === 'IPv4' && l.interface === 'eth0');
  assert.ok(v4, `avahi-browse -rpt did not resolve "Ours Alpha" over IPv4:\n${JSON.stringify(lines, null, 1)}`);
  assert.equal(v4.type, type);
  assert.equal(v4.domain, 'local');
  assert.equal(v4.host, 'ours-h1.local');
  assert.equal(v4.port, 4101);
  assert.equal(v4.address, lab.host(1).ipv4);
  assert.deepEqual(txtSet(v4.txt), txtSet(['v=1', 'id=abc', 'flag', 'sp=two words']));
  // found over IPv6 mDNS too (avahi-browse's protocol column is the transport, not the address family)
  assert.ok(
    lines.some((l) => l.kind === '=' && l.name === 'Ours Alpha' && l.protocol === 'IPv6'),
    'resolved over IPv6 mDNS as well',
  );
  // and our host name has AAAA records Avahi can resolve
  const aaaa = await lab.exec(avahi.ns, 'avahi-resolve-host-name', ['-6', 'ours-h1.local'], { env: avahi.env, timeoutMs: 20_000 });
  const v6 = aaaa.stdout.trim().split(/\s+/)[1] ?? '';
  assert.ok(v6 === lab.host(1).ipv6 || v6.startsWith('fe80:'), `AAAA of ours-h1.local: "${aaaa.stdout.trim()}"`);
  const a = await lab.exec(avahi.ns, 'avahi-resolve-host-name', ['-4', 'ours-h1.local'], { env: avahi.env, timeoutMs: 20_000 });
  assert.equal(a.stdout.trim().split(/\s+/)[1], lab.host(1).ipv4);
});

test('our goodbye removes the service from Avahi within 2 s', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava2._tcp';
  const watch = avahi.browse(type);
  const ours = oursAdvertise(lab, 1, 'Ours Leaving', type, 4102, ['v=1'], { host: 'ours-h1' });
  await registered(ours);
  await waitForLine(watch, (l) => avahiResolved(l, 'Ours Leaving'), DISCOVERY_MS, { what: 'avahi resolves "Ours Leaving"' });
  const mark = watch.stdoutLines.length;
  const t0 = Date.now();
  ours.signal('SIGTERM');
  await waitForLine(watch, (l) => avahiRemoved(l, 'Ours Leaving'), 2_000, { since: mark, what: 'avahi "-" for "Ours Leaving" within 2 s' });
  t.diagnostic(`Avahi saw the removal ${Date.now() - t0} ms after SIGTERM`);
  assert.equal((await ours.exited).code, 0, ours.tail());
});

test('we see avahi-publish-service\'s service (TXT, host, port, addresses) and its removal', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava3._tcp';
  const browse = oursBrowse(lab, 1, type);
  const pub = avahi.publish('Avahi Beta', type, 4103, ['a=1', 'b=two words', 'bare']);
  assert.equal(await avahi.published(pub), 'Avahi Beta');
  const added = await waitAdded(browse, 'Avahi Beta', STARTUP_MS);
  assert.equal(added.type, type);
  assert.equal(added.domain, 'local');
  assert.equal(added.host, 'avahi-h2.local');
  assert.equal(added.port, 4103);
  assert.equal(added.interface, 'eth0');
  assert.deepEqual(added.txt, { a: '1', b: 'two words', bare: null });
  assert.ok(added.addresses?.includes(lab.host(2).ipv4 ?? ''), `addresses ${JSON.stringify(added.addresses)}`);
  const ll = await lab.linkLocal(2);
  const v6ok = added.addresses?.some((a) => a === lab?.host(2).ipv6 || a === `${ll}%eth0`);
  assert.ok(v6ok, `an IPv6 address of h2 in ${JSON.stringify(added.addresses)}`);

  const mark = browse.stdoutLines.length;
  await pub.stop();
  await waitForJson<BrowseLine>(browse, (e) => e.event === 'removed' && e.name === 'Avahi Beta', 5_000, { since: mark, what: '"removed" Avahi Beta' });
});

test('a TXT update of ours reaches Avahi', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava4._tcp';
  const watch = avahi.browse(type);
  const ours = oursAdvertiseUpdatable(lab, 1, 'Ours Changing', type, 4104, ['v=1'], { host: 'ours-h1' });
  await registered(ours);
  await waitForLine(watch, (l) => avahiResolved(l, 'Ours Changing', (e) => txtSet(e.txt).join() === 'v=1'), DISCOVERY_MS, { what: 'avahi resolves v=1' });
  ours.writeLine('update v=2 extra=yes');
  await waitForJson<AdvertiseLine>(ours, (e) => e.event === 'updated', 10_000);
  // avahi-browse resolves an instance once and never reports TXT changes, so ask Avahi's
  // cache again: the re-announcement (cache-flush TXT) must have replaced the old record.
  const fresh = await until(
    async () => {
      const lines = await avahi?.browseOnce(type);
      return lines?.find((l) => l.kind === '=' && l.name === 'Ours Changing' && txtSet(l.txt).join() === 'extra=yes,v=2');
    },
    10_000,
    'Avahi to hold the new TXT',
    250,
  );
  assert.equal(fresh.port, 4104);
  await ours.stop();
});

test('name conflict with Avahi: exactly one side renames, a third host sees both', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava5._tcp';
  const browse = oursBrowse(lab, 3, type);
  // Started together, so both probe at once (simultaneous-probe tie-breaking, RFC 6762 §8.2)
  // or one defends while the other probes: either way one name must change.
  const pub = avahi.publish('Clash', type, 4105, ['who=avahi']);
  const ours = oursAdvertise(lab, 1, 'Clash', type, 4106, ['who=ours'], { host: 'ours-h1' });
  const [avahiName, oursName] = await Promise.all([avahi.published(pub, STARTUP_MS), registered(ours)]);
  const oursFinal = ours
    .json<AdvertiseLine>()
    .filter((e) => e.event === 'registered')
    .pop()?.name;
  t.diagnostic(`Avahi: "${avahiName}", ours: "${oursFinal ?? oursName}"`);
  const finalOurs = oursFinal ?? oursName;
  assert.notEqual(avahiName, finalOurs, 'the two services ended with different names');
  const renamed = [avahiName, finalOurs].filter((n) => n !== 'Clash');
  assert.equal(renamed.length, 1, `exactly one renamed: ${avahiName} / ${finalOurs}`);
  assert.ok(isRenamedFrom(renamed[0] ?? '', 'Clash'), `renamed form: ${renamed[0]}`);
  if (finalOurs !== 'Clash') {
    assert.ok(
      ours.json<AdvertiseLine>().some((e) => e.event === 'renamed' && e.from === 'Clash' && e.name === finalOurs),
      `ours printed a "renamed" event:\n${ours.tail()}`,
    );
  }
  const a = await waitAdded(browse, avahiName, DISCOVERY_MS);
  const o = await waitAdded(browse, finalOurs, DISCOVERY_MS);
  assert.equal(a.txt?.who, 'avahi');
  assert.equal(o.txt?.who, 'ours');
  assert.equal(a.port, 4105);
  assert.equal(o.port, 4106);
  // and nothing else claims to be either of them
  const names = new Set(browse.json<BrowseLine>().filter((e) => e.event === 'added').map((e) => e.name));
  assert.deepEqual([...names].sort(), [avahiName, finalOurs].sort());
});

test('two of ours clash: exactly one renames, Avahi on a third host sees both', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava6._tcp';
  const watch = avahi.browse(type);
  const a = oursAdvertise(lab, 1, 'Twin', type, 4107, ['who=h1'], { host: 'ours-h1' });
  const b = oursAdvertise(lab, 3, 'Twin', type, 4108, ['who=h3'], { host: 'ours-h3' });
  await Promise.all([registered(a), registered(b)]);
  const last = (p: typeof a): string | undefined =>
    p
      .json<AdvertiseLine>()
      .filter((e) => e.event === 'registered')
      .pop()?.name;
  const na = last(a) ?? '';
  const nb = last(b) ?? '';
  t.diagnostic(`h1: "${na}", h3: "${nb}"`);
  assert.notEqual(na, nb);
  assert.equal([na, nb].filter((n) => n === 'Twin').length, 1, 'exactly one kept the name');
  assert.ok(isRenamedFrom(na === 'Twin' ? nb : na, 'Twin'));
  for (const [n, who] of [
    [na, 'h1'],
    [nb, 'h3'],
  ] as const) {
    await waitForLine(watch, (l) => avahiResolved(l, n, (e) => (e.txt ?? []).includes(`who=${who}`)), DISCOVERY_MS, { what: `avahi resolves ${n}` });
  }
  const seen = new Set(watch.stdoutLines.map(parseAvahiBrowseLine).filter((e) => e?.kind === '+').map((e) => e?.name));
  assert.deepEqual([...seen].sort(), [na, nb].sort());
});

test('a TXT update published through Avahi reaches us as "changed"', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'python-dbus') || !lab || !avahi) return;
  const type = '_plava7._tcp';
  const browse = oursBrowse(lab, 1, type);
  const pub = avahi.publishDbus('Avahi Changing', type, 4109, ['v=1']);
  await waitForJson<{ event: string }>(pub, (e) => e.event === 'registered', STARTUP_MS, { what: 'Avahi D-Bus publish registered' });
  await waitAdded(browse, 'Avahi Changing', STARTUP_MS, (e) => e.txt?.v === '1');
  const mark = browse.stdoutLines.length;
  pub.writeLine('update v=2 extra=yes');
  await waitForJson<{ event: string }>(pub, (e) => e.event === 'updated', 10_000);
  const changed = await waitForJson<BrowseLine>(browse, (e) => e.event === 'changed' && e.name === 'Avahi Changing', 10_000, { since: mark, what: '"changed" from Avahi' });
  assert.deepEqual(changed.txt, { v: '2', extra: 'yes' });
  assert.equal(changed.port, 4109);
  assert.equal(changed.host, 'avahi-h2.local');
  const stopMark = browse.stdoutLines.length;
  await pub.stop();
  await waitForJson<BrowseLine>(browse, (e) => e.event === 'removed' && e.name === 'Avahi Changing', 5_000, { since: stopMark, what: '"removed" Avahi Changing' });
});

test('subtypes both ways: Avahi browses our _sub, we browse Avahi\'s', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava8._tcp';
  const ours = lab.spawnNode(1, PEERLINK_BIN, ['advertise', 'Ours Sub', type, '4110', '--subtype', '_printer', '--json', '--host', 'ours-h1']);
  await registered(ours);
  const plain = oursAdvertise(lab, 1, 'Ours Plain', type, 4111, [], { host: 'ours-h1b' });
  await registered(plain);
  // avahi-browse takes a subtype as `_printer._sub._plava8._tcp`
  const subLines = await until(
    async () => {
      const l = await avahi?.browseOnce(`_printer._sub.${type}`);
      return l?.some((x) => x.kind === '=' && x.name === 'Ours Sub') ? l : undefined;
    },
    DISCOVERY_MS,
    'Avahi to find Ours Sub under _printer._sub',
    500,
  );
  assert.ok(!subLines.some((x) => x.name === 'Ours Plain'), 'the plain instance is not under the subtype');

  const pub = avahi.publish('Avahi Sub', type, 4112, [], { subtypes: [`_scanner._sub.${type}`] });
  await avahi.published(pub);
  const browse = lab.spawnNode(3, PEERLINK_BIN, ['browse', type, '--subtype', '_scanner', '--json']);
  await waitAdded(browse, 'Avahi Sub', DISCOVERY_MS);
  assert.ok(!browse.json<BrowseLine>().some((e) => e.name === 'Ours Sub' || e.name === 'Ours Plain'), 'only the subtype instance');
  await Promise.all([ours.stop(), plain.stop(), pub.stop(), browse.stop()]);
});

test('Avahi finds our service type through _services._dns-sd._udp enumeration', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plenum._tcp';
  const ours = oursAdvertise(lab, 1, 'Ours Enum', type, 4113, [], { host: 'ours-h1' });
  await registered(ours);
  // `avahi-browse -a` browses every type found by enumeration (RFC 6763 §9)
  await until(
    async () => {
      const r = await lab?.exec(avahi?.ns ?? '', 'avahi-browse', ['-a', '-p', '-k', '-t'], { env: avahi?.env, timeoutMs: 20_000, check: false });
      return r?.stdout.split('\n').some((l) => {
        const e = parseAvahiBrowseLine(l);
        return e?.kind === '+' && e.type === type && e.name === 'Ours Enum';
      });
    },
    DISCOVERY_MS,
    'avahi-browse -a to list _plenum._tcp',
    500,
  );
  await ours.stop();
});

test('host name conflict with Avahi: we take `<name>-2.local`, and Avahi resolves our service to it', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plava9._tcp';
  // Avahi on h2 already owns avahi-h2.local; we ask for the same host name on h1
  const ours = oursAdvertise(lab, 1, 'Ours Hosted', type, 4114, [], { host: 'avahi-h2' });
  await registered(ours);
  const line = await until(
    async () => (await avahi?.browseOnce(type))?.find((l) => l.kind === '=' && l.name === 'Ours Hosted' && l.protocol === 'IPv4'),
    DISCOVERY_MS,
    'Avahi resolves Ours Hosted',
    500,
  );
  assert.ok(line.host && /^avahi-h2-\d+\.local$/.test(line.host), `renamed host: ${line.host}`);
  assert.equal(line.address, lab.host(1).ipv4);
  // Avahi kept its own name and address
  const own = await lab.exec(avahi.ns, 'avahi-resolve-host-name', ['-4', 'avahi-h2.local'], { env: avahi.env, timeoutMs: 20_000 });
  assert.equal(own.stdout.trim().split(/\s+/)[1], lab.host(2).ipv4);
  await ours.stop();
});

test('known-answer suppression: Avahi\'s repeated queries that list our PTR get no PTR answer from us', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab) return;
  const type = '_plkas._tcp';
  const ptr = `${type}.local/PTR`;
  const ourPtr = (l: string): boolean => l.includes(`${lab?.host(1).ipv4}:5353 R`) && l.includes(`an:${ptr}`);
  const sniffer = await lab.sniffMdns();
  const ours = oursAdvertise(lab, 1, 'Ours Known', type, 4115, [], { host: 'ours-h1' });
  await registered(ours);
  // Our announcements must be over before we count PTR answers: see both in the capture, then
  // a quiet second and a half (nobody queries this type yet), however slow the machine is.
  let seen = -1;
  let quietSince = Date.now();
  await until(() => {
    const n = sniffer.stdoutLines.filter(ourPtr).length;
    if (n !== seen) {
      seen = n;
      quietSince = Date.now();
    }
    return n >= 2 && Date.now() - quietSince >= 1500;
  }, 30_000, 'our two announcements, then quiet');
  const mark = sniffer.stdoutLines.length;
  const captured = (): string[] => sniffer.stdoutLines.slice(mark);
  // a fresh Avahi (on h3) that has not cached our announcements
  const fresh = await startAvahi(lab, 3, { hostName: 'avahi-h3', serverConf: ['use-ipv6=no'] });
  try {
    const watch = fresh.browse(type);
    await waitForLine(watch, (l) => avahiResolved(l, 'Ours Known'), DISCOVERY_MS);
    const fromAvahi = (): string[] => captured().filter((l) => l.includes(`${lab?.host(3).ipv4}:5353 Q`) && l.includes(`q=[${ptr}`));
    const withKnown = (): string[] => fromAvahi().filter((l) => l.includes(`an:${ptr}`));
    // Avahi re-queries at growing intervals (1 s, 2 s, 4 s, ...): wait for two that list our PTR
    await until(() => withKnown().length >= 2, 60_000, 'two Avahi queries listing our PTR').catch(() => undefined);
    // an answer to the last query may still be on its way (20-120 ms aggregation)
    await sleep(500);
    const ourPtrAnswers = captured().filter(ourPtr);
    t.diagnostic(`Avahi queries: ${fromAvahi().length} (${withKnown().length} with our PTR as known answer); our PTR answers: ${ourPtrAnswers.length}`);
    assert.ok(withKnown().length >= 2, `Avahi re-queried with known answers:\n${fromAvahi().join('\n')}`);
    assert.ok(
      ourPtrAnswers.length <= fromAvahi().length - withKnown().length,
      `we answered queries that already knew our PTR:\n${[...fromAvahi(), ...ourPtrAnswers].join('\n')}`,
    );
  } finally {
    await fresh.stop();
    await ours.stop();
  }
});
