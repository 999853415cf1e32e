import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeTxt, decodeTxt, txtToStrings } from '../../../src/dnssd/txt.js';
import { parseServiceType, validateInstanceName, parseHostName, nextInstanceName, nextHostLabel, normalizeSubtype, splitInstanceFqdn, instanceFqdn } from '../../../src/dnssd/names.js';
import { isPeerlinkError } from '../../../src/errors.js';

const code = (c: string) => (e: unknown) => isPeerlinkError(e) && e.code === c;

test('TXT: key=value, boolean keys, binary values, empty record', () => {
  const s = encodeTxt({ a: '1', flag: true, nul: null, bin: Buffer.from([0xff, 0]), n: 5, off: false, skip: undefined, empty: '' });
  assert.deepEqual(s.map((b) => b.toString('latin1')), ['a=1', 'flag', 'nul', 'bin=\xff\x00', 'n=5', 'empty=']);
  assert.deepEqual(encodeTxt({}), [Buffer.alloc(0)]);
  assert.deepEqual(encodeTxt(undefined), [Buffer.alloc(0)]);
});

test('TXT: 255-byte strings, key rules, case-insensitive duplicates refused', () => {
  assert.equal(encodeTxt({ k: 'x'.repeat(253) })[0]?.length, 255);
  assert.throws(() => encodeTxt({ k: 'x'.repeat(254) }), code('ERR_INVALID_TXT'));
  assert.throws(() => encodeTxt({ '': 'x' }), code('ERR_INVALID_TXT'));
  assert.throws(() => encodeTxt({ 'a=b': 'x' }), code('ERR_INVALID_TXT'));
  assert.throws(() => encodeTxt({ 'k\u00e9': 'x' }), code('ERR_INVALID_TXT'));
  assert.throws(() => encodeTxt({ Key: '1', key: '2' }), code('ERR_INVALID_TXT'));
});

test('TXT decode: first occurrence wins, keys as received, junk ignored', () => {
  const entries = decodeTxt([Buffer.from('Path=/a'), Buffer.from('path=/b'), Buffer.from('=nokey'), Buffer.alloc(0), Buffer.from('bool'), Buffer.from('e=')]);
  assert.deepEqual(entries.map((e) => [e.key, e.value?.toString() ?? null]), [['Path', '/a'], ['bool', null], ['e', '']]);
  const { txt, binary } = txtToStrings(decodeTxt([Buffer.from('u=h\u00e9llo'), Buffer.concat([Buffer.from('b='), Buffer.from([0xff, 0xfe])])]));
  assert.deepEqual(txt, { u: 'h\u00e9llo', b: Buffer.from([0xff, 0xfe]).toString('base64') });
  assert.deepEqual(binary, ['b']);
});

test('service types follow RFC 6335', () => {
  assert.deepEqual(parseServiceType('_http._tcp'), { name: '_http', protocol: '_tcp' });
  assert.deepEqual(parseServiceType('_example._udp.local.'), { name: '_example', protocol: '_udp' });
  assert.equal(parseServiceType('_a-b-c._TCP').protocol, '_tcp');
  for (const bad of ['http._tcp', '_http', '_http._sctp', '_._tcp', '_abcdefghijklmnop._tcp', '_-a._tcp', '_a-._tcp', '_a--b._tcp', '_123._tcp', '_a_b._tcp', 'a.b.c']) {
    assert.throws(() => parseServiceType(bad), code('ERR_INVALID_SERVICE_TYPE'), bad);
  }
  assert.equal(normalizeSubtype('printer'), '_printer');
  assert.throws(() => normalizeSubtype('_'), code('ERR_INVALID_SERVICE_TYPE'));
});

test('instance names: UTF-8 up to 63 bytes, no control characters', () => {
  validateInstanceName('Living Room');
  validateInstanceName('Mr. Smith\u2019s Printer');
  validateInstanceName('\u00e9'.repeat(31));
  assert.throws(() => validateInstanceName('\u00e9'.repeat(32)), code('ERR_INVALID_INSTANCE_NAME'));
  assert.throws(() => validateInstanceName(''), code('ERR_INVALID_INSTANCE_NAME'));
  assert.throws(() => validateInstanceName('a\nb'), code('ERR_INVALID_INSTANCE_NAME'));
  assert.throws(() => validateInstanceName('x\ud800'), code('ERR_INVALID_INSTANCE_NAME'));
});

test('host names and conflict renaming', () => {
  assert.equal(parseHostName('vm.local'), 'vm');
  assert.equal(parseHostName('my-box'), 'my-box');
  assert.throws(() => parseHostName('bad_name'), code('ERR_INVALID_HOST_NAME'));
  assert.throws(() => parseHostName('-x'), code('ERR_INVALID_HOST_NAME'));
  assert.equal(nextInstanceName('Name'), 'Name (2)');
  assert.equal(nextInstanceName('Name (2)'), 'Name (3)');
  assert.equal(Buffer.byteLength(nextInstanceName('x'.repeat(63))), 63);
  assert.equal(nextHostLabel('vm'), 'vm-2');
  assert.equal(nextHostLabel('vm-2'), 'vm-3');
});

test('instance FQDNs escape dots and split back', () => {
  const fqdn = instanceFqdn('Mr. X', parseServiceType('_http._tcp'));
  assert.equal(fqdn, 'Mr\\. X._http._tcp.local');
  assert.deepEqual(splitInstanceFqdn(fqdn), { instance: 'Mr. X', type: '_http._tcp', domain: 'local' });
  assert.equal(splitInstanceFqdn('vm.local'), undefined);
});
