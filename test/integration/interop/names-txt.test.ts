/**
 * Names and TXT records that stress the encoding, both ways against Avahi and
 * python-zeroconf: UTF-8 instance names with spaces, dots, parentheses and a 63-byte name;
 * TXT with boolean keys, empty values, binary (non-UTF-8) values, duplicate keys (first
 * wins, keys case-insensitive) and a 255-byte string (RFC 6763 §6).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../harness/netns.js';
import type { Avahi } from '../../harness/avahi.js';
import { until, waitForJson } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { zeroconfBrowse, zeroconfReady, type ZeroconfBrowseEvent } from '../../harness/zeroconf.js';
import { DISCOVERY_MS, STARTUP_MS, oursAdvertise, oursBrowse, registered, txtSet, waitAdded } from './peers.js';
import { useLab, startAvahiH2 } from './lab.js';

const skip = skipUnless('netns', 'avahi', 'zeroconf');
let lab: Lab | undefined;
let avahi: Avahi | undefined;

useLab(skip, { hosts: 3, tag: 'intx' }, async (l, avahis) => {
  lab = l;
  avahi = await startAvahiH2(l, avahis);
});

const T = { timeout: 300_000 };
// 63 bytes of UTF-8: 20 × "é" (2 bytes) + 23 ASCII
const LONG_NAME = `${'é'.repeat(20)}${'x'.repeat(23)}`;
const NAMES = ['Café Ünïcode (1)', 'Dotted.Name v2.0', LONG_NAME];

test('UTF-8 names with dots and a 63-byte name: Avahi and python-zeroconf see ours exactly', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab || !avahi) return;
  assert.equal(Buffer.byteLength(LONG_NAME), 63);
  const type = '_plnames1._tcp';
  const zc = zeroconfBrowse(lab, 3, type);
  await zeroconfReady(zc, STARTUP_MS);
  const procs = NAMES.map((n, i) => oursAdvertise(lab as Lab, 1, n, type, 4901 + i, [], { host: 'ours-h1' }));
  for (const [i, p] of procs.entries()) assert.equal(await registered(p), NAMES[i]);
  for (const n of NAMES) {
    await waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'added' && e.name === n, DISCOVERY_MS, { what: `zeroconf sees ${n}` });
  }
  await until(
    async () => {
      const names = new Set((await avahi?.browseOnce(type))?.filter((l) => l.kind === '=').map((l) => l.name));
      return NAMES.every((n) => names.has(n));
    },
    DISCOVERY_MS,
    'Avahi to resolve every name',
    500,
  );
});

test('UTF-8 names with dots published by Avahi arrive exactly', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab || !avahi) return;
  const type = '_plnames2._tcp';
  const browse = oursBrowse(lab, 1, type);
  for (const [i, n] of NAMES.entries()) {
    const p = avahi.publish(n, type, 4911 + i);
    assert.equal(await avahi.published(p), n);
  }
  for (const n of NAMES) await waitAdded(browse, n, STARTUP_MS);
});

test('TXT edge cases from Avahi: boolean, empty, binary, duplicate keys, 255-byte string', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'python-dbus') || !lab || !avahi) return;
  const type = '_pltxt1._tcp';
  const browse = oursBrowse(lab, 1, type);
  const long = `l=${'y'.repeat(253)}`; // 255 bytes
  // "bin=" + 0xff 0x00 0x80 (not UTF-8); "Dup=first" then "dup=second" (same key, first wins)
  const pub = avahi.publishDbus('Txt Edges', type, 4920, ['flag', 'empty=', `hex:${Buffer.from('bin=').toString('hex')}ff0080`, 'Dup=first', 'dup=second', long]);
  await waitForJson<{ event: string }>(pub, (e) => e.event === 'registered', STARTUP_MS);
  const e = await waitAdded(browse, 'Txt Edges', STARTUP_MS);
  assert.equal(e.txt?.flag, null, 'boolean key');
  assert.equal(e.txt?.empty, '', 'empty value');
  assert.equal(e.txt?.bin, Buffer.from([0xff, 0x00, 0x80]).toString('base64'), 'binary value base64');
  assert.deepEqual(e.binaryTxt, ['bin']);
  assert.equal(e.txt?.Dup, 'first', 'first occurrence wins');
  assert.ok(!('dup' in (e.txt ?? {})), 'the later duplicate (other case) is dropped');
  assert.equal(e.txt?.l, 'y'.repeat(253));
});

test('TXT edge cases from ours reach Avahi and python-zeroconf intact', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab || !avahi) return;
  const type = '_pltxt2._tcp';
  const zc = zeroconfBrowse(lab, 3, type);
  await zeroconfReady(zc, STARTUP_MS);
  const long = `l=${'z'.repeat(253)}`;
  const ours = oursAdvertise(lab, 1, 'Ours Txt', type, 4921, ['flag', 'empty=', 'eq=a=b', 'utf=ünï', long], { host: 'ours-h1' });
  await registered(ours);
  const seen = await waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'added' && e.name === 'Ours Txt', DISCOVERY_MS);
  assert.deepEqual(seen.txt, { flag: null, empty: '', eq: 'a=b', utf: 'ünï', l: 'z'.repeat(253) });
  const line = await until(
    async () => (await avahi?.browseOnce(type))?.find((l) => l.kind === '=' && l.name === 'Ours Txt'),
    DISCOVERY_MS,
    'Avahi resolves Ours Txt',
    500,
  );
  assert.deepEqual(txtSet(line.txt), txtSet(['flag', 'empty=', 'eq=a=b', 'utf=ünï', long]));
});
