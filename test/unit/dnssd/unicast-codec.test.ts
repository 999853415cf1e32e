import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { inspect } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePacket, CLASS_IN, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import { TsigKey, parseKeyFile, parseKeySpec, signMessage, signResponse, verifyRequest, verifyResponse } from '../../../src/dnssd/unicast/tsig.js';
import { encodeUpdate, nameNotInUse, addRecord, deleteName, rrsetEquals, deleteRecord, CLASS_NONE, CLASS_ANY, OPCODE_UPDATE } from '../../../src/dnssd/unicast/update.js';
import { parseResolvConf } from '../../../src/dnssd/unicast/context.js';
import { leaseOf, withoutLease, leaseStrings } from '../../../src/dnssd/unicast/lease.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { run } from '../../harness/proc.js';
import { requires } from '../../harness/prereq.js';

const KEY_FILE = `key "peerlink-key" {
\talgorithm hmac-sha256;
\tsecret "lj/1KwbNQYcACl+MhjkufEisuo8BSRdW/c9sndEppAk=";
};
`;

const rr = { ttl: 60, rrclass: CLASS_IN, cacheFlush: false };

function sampleUpdate(id = 0x1234): Buffer {
  const a: ResourceRecord = { ...rr, name: 'h.example.test', type: 'A', address: '10.0.0.1' };
  return encodeUpdate({ id, zone: 'example.test', prerequisites: [nameNotInUse('x._p._tcp.example.test')], updates: [deleteName('h.example.test'), addRecord(a)] });
}

test('BIND key files parse (tsig-keygen output, comments, unquoted name); the secret never shows in inspect or JSON', () => {
  const k = parseKeyFile(KEY_FILE);
  assert.equal(k.name, 'peerlink-key');
  assert.equal(k.algorithm, 'hmac-sha256');
  assert.ok(!inspect(k).includes('lj/1Kwb'));
  assert.ok(!JSON.stringify(k).includes('lj/1Kwb'));
  const k2 = parseKeyFile(`# comment\n/* c */ key other.key. { algorithm HMAC-SHA512; // x\n secret "AAEC"; };`);
  assert.equal(k2.name, 'other.key');
  assert.equal(k2.algorithm, 'hmac-sha512');
  // a base64 secret may contain "//" (tsig-keygen's random output, ~1 % of keys): not a comment
  const slashes = parseKeyFile('key "k" {\n\talgorithm hmac-sha256;\n\tsecret "ab//cd+/ef==";\n}; // trailing');
  assert.equal(slashes.name, 'k');
  const spec = parseKeySpec('hmac-sha256:k:ab//cd+/ef==');
  assert.deepEqual(signMessage(sampleUpdate(), slashes, { now: 1 }).mac, signMessage(sampleUpdate(), spec, { now: 1 }).mac, 'the whole secret, "//" included');
  for (const bad of ['', 'key "x" { secret "AAEC"; };', 'key "x" { algorithm hmac-md5; secret "AAEC"; };', 'key "x" { algorithm hmac-sha256; secret "!!"; };', 'x'.repeat(70_000)])
    assert.throws(() => parseKeyFile(bad), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_BAD_KEY_FILE'));
  assert.equal(parseKeySpec('hmac-sha256:peerlink-key:AAEC').name, 'peerlink-key');
  assert.equal(parseKeySpec('n:AAEC').algorithm, 'hmac-sha256');
});

test('UPDATE sections follow RFC 2136: zone SOA question, prerequisites in answers, updates in authority', () => {
  const p = decodePacket(sampleUpdate());
  assert.equal(p.opcode, OPCODE_UPDATE);
  assert.deepEqual(p.questions.map((q) => [q.name, q.qtype]), [['example.test', 6]]);
  const pre = p.answers[0];
  assert.ok(pre && pre.type === 'UNKNOWN' && pre.rrtype === 255 && pre.rrclass === CLASS_NONE && pre.ttl === 0 && pre.data.length === 0);
  const del = p.authorities[0];
  assert.ok(del && del.type === 'UNKNOWN' && del.rrtype === 255 && del.rrclass === CLASS_ANY);
  assert.equal(p.authorities[1]?.type, 'A');
  const eq = rrsetEquals([{ ...rr, name: 'x', type: 'TXT', strings: [Buffer.from('a=1')] }])[0];
  assert.equal(eq?.ttl, 0);
  assert.equal(deleteRecord({ ...rr, name: 'x', type: 'PTR', target: 'y' }).rrclass, CLASS_NONE);
});

test('TSIG: a signed message verifies; a changed byte, another key or a clock outside the fudge does not', () => {
  const key = parseKeyFile(KEY_FILE);
  const now = 1_800_000_000;
  const { message, mac } = signMessage(sampleUpdate(), key, { now });
  assert.equal(mac.length, 32);
  assert.deepEqual(verifyRequest(message, key, { now }), { error: 0, verified: true });
  assert.equal(decodePacket(message).additionals[0]?.type, 'UNKNOWN');
  const flipped = Buffer.from(message);
  const at = sampleUpdate().length - 1; // the last byte of the A record's address
  flipped[at] = (flipped[at] as number) ^ 1;
  assert.throws(() => verifyRequest(flipped, key, { now }), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_VERIFY'));
  const other = new TsigKey('peerlink-key', 'hmac-sha256', Buffer.alloc(32, 7));
  assert.throws(() => verifyRequest(message, other, { now }), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_VERIFY'));
  assert.throws(() => verifyRequest(message, key, { now: now + 301 }), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_VERIFY'));
  assert.deepEqual(verifyRequest(message, key, { now: now + 299 }), { error: 0, verified: true });
  // a response MAC covers the request MAC (RFC 8945 §5.3): built here as a server would
  const resp = Buffer.from(sampleUpdate());
  resp.writeUInt16BE(resp.readUInt16BE(2) | 0x8000, 2);
  const serverSigned = signResponse(resp, key, mac, { now });
  assert.equal(verifyResponse(serverSigned, key, mac, { now }).verified, true);
  assert.throws(() => verifyResponse(serverSigned, key, Buffer.alloc(32), { now }), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_VERIFY'));
  assert.throws(() => verifyResponse(resp, key, mac, { now }), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_VERIFY'));
});

test('known vector: an update signed by BIND nsupdate -k verifies with our TSIG code', async (t) => {
  if (!requires(t, 'bind')) return;
  const dir = mkdtempSync(join(tmpdir(), 'peerlink-tsig-'));
  const keyPath = join(dir, 'k.key');
  writeFileSync(keyPath, KEY_FILE);
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  const got = new Promise<Buffer>((resolve) => sock.once('message', (m) => resolve(m)));
  const ns = run('nsupdate', ['-k', keyPath, '-t', '2', '-u', '1', '-r', '0'], {
    check: false,
    input: `server 127.0.0.1 ${port}\nzone example.test\nprereq nxdomain x.example.test\nupdate add x.example.test 60 A 10.0.0.9\nsend\n`,
  });
  const captured = await got;
  sock.close();
  await ns;
  const key = parseKeyFile(KEY_FILE);
  assert.deepEqual(verifyRequest(captured, key, { now: Date.now() / 1000 }), { error: 0, verified: true });
  const p = decodePacket(captured);
  assert.equal(p.opcode, OPCODE_UPDATE);
  assert.equal(p.answers[0]?.rrclass, CLASS_NONE);
});

test('resolv.conf: nameservers and the last search/domain line, bounded', () => {
  const r = parseResolvConf('# x\nnameserver 10.0.0.1\nnameserver fd00::1\nnameserver bogus\ndomain a.test\nsearch b.test c.test.\n');
  assert.deepEqual(r.nameservers, [{ address: '10.0.0.1', port: 53 }, { address: 'fd00::1', port: 53 }]);
  assert.deepEqual(r.search, ['b.test', 'c.test']);
});

test('lease keys: parsed, stripped from what browsers report', () => {
  const strings = [Buffer.from('name=x'), ...leaseStrings(1234.5, 'abcd', 'ef01')];
  const l = leaseOf({ ...rr, name: 'x', type: 'TXT', strings });
  assert.deepEqual(l, { expires: 1234, token: 'abcd', run: 'ef01' });
  assert.deepEqual(withoutLease(strings).map(String), ['name=x']);
  assert.deepEqual(withoutLease(strings.slice(1)), [Buffer.alloc(0)]);
});

test('TSIG verification of mutated and truncated messages only ever fails with a PeerlinkError (never throws anything else, never verifies)', () => {
  const key = parseKeyFile(KEY_FILE);
  const now = 1_800_000_000;
  const { mac } = signMessage(sampleUpdate(), key, { now });
  const resp = Buffer.from(sampleUpdate());
  resp.writeUInt16BE(resp.readUInt16BE(2) | 0x8000, 2);
  const good = signResponse(resp, key, mac, { now });
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    let m = Buffer.from(good);
    if (i % 3 === 0) m = m.subarray(0, rnd(m.length));
    else for (let k = 0; k <= rnd(4); k++) m[rnd(m.length)] = rnd(256);
    if (m.equals(good)) continue;
    try {
      const r = verifyResponse(m, key, mac, { now });
      // only what the MAC does not cover may change: the message ID (forwarders may rewrite
      // it; the original is in the TSIG) and the case of the key and algorithm names
      const same = m.length === good.length && m.subarray(2).toString('latin1').toLowerCase() === good.subarray(2).toString('latin1').toLowerCase();
      assert.ok(r.verified === false ? r.error !== 0 : same, `a mutated message verified: ${m.toString('hex')}`);
    } catch (err) {
      assert.ok(isPeerlinkError(err), `non-Peerlink error: ${String(err)}`);
    }
  }
});
