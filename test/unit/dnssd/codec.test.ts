import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, encodePacket, PacketWriter, emptyPacket, CLASS_IN, RRType, splitName, joinLabels, rdataOf, type DnsPacket, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import { isPeerlinkError } from '../../../src/errors.js';

const rr = { ttl: 120, rrclass: CLASS_IN, cacheFlush: false };

function roundTrip(p: DnsPacket): DnsPacket {
  return decodePacket(encodePacket(p));
}

function malformed(buf: Buffer): void {
  assert.throws(() => decodePacket(buf), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_PACKET'));
}

test('every supported record type survives a round trip', () => {
  const records: ResourceRecord[] = [
    { ...rr, name: 'vm.local', type: 'A', address: '10.77.0.1', cacheFlush: true },
    { ...rr, name: 'vm.local', type: 'AAAA', address: 'fe80::77:ff:fe00:1' },
    { ...rr, name: 'vm.local', type: 'AAAA', address: '2001:db8::1' },
    { ...rr, name: '_http._tcp.local', type: 'PTR', target: 'My\\.Printer._http._tcp.local', ttl: 4500 },
    { ...rr, name: 'My\\.Printer._http._tcp.local', type: 'SRV', priority: 1, weight: 2, port: 8080, target: 'vm.local' },
    { ...rr, name: 'My\\.Printer._http._tcp.local', type: 'TXT', strings: [Buffer.from('a=1'), Buffer.from([0, 255, 61])] },
    { ...rr, name: 'vm.local', type: 'NSEC', next: 'vm.local', types: [1, 28, 33, 47, 256, 1000] },
    { ...rr, name: 'vm.local', type: 'UNKNOWN', rrtype: 13, data: Buffer.from('HINFO-ish') },
  ];
  const p: DnsPacket = { ...emptyPacket(true), id: 7, answers: records.slice(0, 4), authorities: records.slice(4, 6), additionals: records.slice(6) };
  const back = roundTrip(p);
  assert.equal(back.id, 7);
  assert.equal(back.response, true);
  assert.equal(back.authoritative, true);
  assert.deepEqual(back.answers, p.answers);
  assert.deepEqual(back.authorities, p.authorities);
  assert.deepEqual(back.additionals, p.additionals);
});

test('questions keep the QU bit; records keep the cache-flush bit', () => {
  const p: DnsPacket = {
    ...emptyPacket(false),
    truncated: true,
    questions: [
      { name: '_x._tcp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: true },
      { name: 'vm.local', qtype: RRType.ANY, qclass: CLASS_IN, unicastResponse: false },
    ],
    answers: [{ ...rr, name: 'vm.local', type: 'A', address: '1.2.3.4', cacheFlush: true }],
  };
  const back = roundTrip(p);
  assert.deepEqual(back.questions, p.questions);
  assert.equal(back.truncated, true);
  assert.equal(back.response, false);
  assert.equal(back.answers[0]?.cacheFlush, true);
});

test('names are compressed and a name with dots inside a label is kept intact', () => {
  const name = 'Mr\\. Smith\\\\s box._http._tcp.local';
  assert.deepEqual(splitName(name), ['Mr. Smith\\s box', '_http', '_tcp', 'local']);
  assert.equal(joinLabels(splitName(name)), name);
  const p: DnsPacket = { ...emptyPacket(true), answers: Array.from({ length: 5 }, () => ({ ...rr, name: '_http._tcp.local', type: 'PTR' as const, target: name })) };
  const buf = encodePacket(p);
  // five uncompressed copies would need > 5 * 2 * 40 bytes
  assert.ok(buf.length < 200, `compressed size ${buf.length}`);
  assert.equal((roundTrip(p).answers[0] as { target: string }).target, name);
});

test('an empty TXT record is written as one zero byte', () => {
  const p: DnsPacket = { ...emptyPacket(true), answers: [{ ...rr, name: 'a.local', type: 'TXT', strings: [] }] };
  const buf = encodePacket(p);
  assert.equal(buf[buf.length - 1], 0);
  assert.equal(buf.readUInt16BE(buf.length - 3), 1);
});

function header(qd: number, an: number, ns = 0, ar = 0, flags = 0x8400): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

test('refuses truncated and oversized input', () => {
  malformed(Buffer.alloc(0));
  malformed(Buffer.alloc(11));
  malformed(Buffer.alloc(9001));
  const good = encodePacket({ ...emptyPacket(true), answers: [{ ...rr, name: 'vm.local', type: 'A', address: '1.2.3.4' }] });
  for (let cut = 12; cut < good.length; cut++) malformed(good.subarray(0, cut));
});

test('refuses compression loops, forward pointers and pointer chains', () => {
  // a question whose name is a pointer to itself
  malformed(Buffer.concat([header(1, 0), Buffer.from([0xc0, 12, 0, 1, 0, 1])]));
  // a label followed by a pointer back to that label: offsets do not strictly decrease
  malformed(Buffer.concat([header(1, 0), Buffer.from([1, 0x61, 0xc0, 12, 0, 1, 0, 1])]));
  // a forward pointer
  malformed(Buffer.concat([header(1, 0), Buffer.from([0xc0, 20, 0, 1, 0, 1, 0, 0, 1, 0x61, 0])]));
  // two pointers pointing at each other
  malformed(Buffer.concat([header(2, 0), Buffer.from([0xc0, 18, 0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1])]));
  // reserved label types 0x40 / 0x80
  malformed(Buffer.concat([header(1, 0), Buffer.from([0x41, 0x61, 0, 0, 1, 0, 1])]));
});

test('a legal backward pointer chain decodes', () => {
  const buf = Buffer.concat([header(2, 0), Buffer.from([3, 0x61, 0x62, 0x63, 0, 0, 1, 0, 1, 1, 0x78, 0xc0, 12, 0, 1, 0, 1])]);
  const p = decodePacket(buf);
  assert.deepEqual(p.questions.map((q) => q.name), ['abc', 'x.abc']);
});

test('enforces label <= 63 and name <= 255 bytes', () => {
  const label64 = Buffer.concat([Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0])]);
  malformed(Buffer.concat([header(1, 0), label64, Buffer.from([0, 1, 0, 1])]));
  const labels: number[] = [];
  for (let i = 0; i < 5; i++) labels.push(60, ...Buffer.alloc(60, 0x61));
  malformed(Buffer.concat([header(1, 0), Buffer.from(labels), Buffer.from([0, 0, 1, 0, 1])]));
  assert.throws(() => encodePacket({ ...emptyPacket(false), questions: [{ name: `${'a'.repeat(64)}.local`, qtype: 1, qclass: 1, unicastResponse: false }] }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
});

test('checks rdlength against the packet and against the record data', () => {
  // A record claiming 200 bytes of data: the packet's framing is broken
  malformed(Buffer.concat([header(0, 1), Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 10, 0, 200, 1, 2, 3, 4])]));
  // a record claiming fewer bytes than the rest: the next record starts inside garbage
  malformed(Buffer.concat([header(0, 2), Buffer.from([0, 0, 1, 0, 1, 0, 0, 0, 10, 0, 3, 1, 2, 3, 4])]));
  // records whose data does not match their type stay in the packet as raw bytes, never as
  // half-parsed values: A with 5 bytes, a PTR name running past rdlength, a TXT string
  // longer than its record, a short SRV
  const cases: [number[], number][] = [
    [[0, 0, 1, 0, 1, 0, 0, 0, 10, 0, 5, 1, 2, 3, 4, 5], RRType.A],
    [[0, 0, 12, 0, 1, 0, 0, 0, 10, 0, 2, 1, 0x61, 0], RRType.PTR],
    [[0, 0, 16, 0, 1, 0, 0, 0, 10, 0, 2, 5, 0x61], RRType.TXT],
    [[0, 0, 33, 0, 1, 0, 0, 0, 10, 0, 3, 0, 0, 0], RRType.SRV],
  ];
  for (const [bytes, rrtype] of cases) {
    const buf = Buffer.concat([header(0, 1), Buffer.from(bytes)]);
    let p: DnsPacket;
    try {
      p = decodePacket(buf);
    } catch {
      // the PTR case's trailing byte is outside the record: also a framing error
      continue;
    }
    const r = p.answers[0];
    assert.equal(r?.type, 'UNKNOWN', `type ${rrtype}`);
    assert.equal(r?.type === 'UNKNOWN' && r.rrtype, rrtype);
  }
  // the PTR case with correct framing but a name that runs past the rdata
  const ptr = decodePacket(Buffer.concat([header(0, 1), Buffer.from([0, 0, 12, 0, 1, 0, 0, 0, 10, 0, 2, 1, 0x61])]));
  assert.equal(ptr.answers[0]?.type, 'UNKNOWN');
});

test('refuses record counts the packet cannot hold', () => {
  malformed(Buffer.concat([header(0xffff, 0xffff, 0xffff, 0xffff), Buffer.alloc(100)]));
  malformed(Buffer.concat([header(0, 10), Buffer.alloc(100)]));
});

test('PacketWriter rolls back a record that does not fit', () => {
  const w = new PacketWriter(100);
  w.header(0, true);
  assert.equal(w.addRecord(1, { ...rr, name: 'a.local', type: 'TXT', strings: [Buffer.alloc(40)] }), true);
  assert.equal(w.addRecord(1, { ...rr, name: 'b.local', type: 'TXT', strings: [Buffer.alloc(60)] }), false);
  assert.equal(w.addRecord(1, { ...rr, name: 'a.local', type: 'A', address: '1.1.1.1' }), true);
  const p = decodePacket(w.finish());
  assert.equal(p.answers.length, 2);
  assert.equal(p.answers[1]?.name, 'a.local');
});

test('a rolled-back record takes its compression targets with it; uncompressed names still offer theirs', () => {
  const w = new PacketWriter(120);
  w.header(0, true);
  assert.equal(w.addRecord(1, { ...rr, name: 'a.local', type: 'A', address: '1.1.1.1' }), true);
  // does not fit: its names (deep.sub.zone.local, sub.zone.local, zone.local) must not stay as pointer targets
  assert.equal(w.addRecord(1, { ...rr, name: 'deep.sub.zone.local', type: 'TXT', strings: [Buffer.alloc(90)] }), false);
  assert.equal(w.addRecord(1, { ...rr, name: 'sub.zone.local', type: 'A', address: '2.2.2.2' }), true);
  const p = decodePacket(w.finish());
  assert.deepEqual(p.answers.map((r) => r.name), ['a.local', 'sub.zone.local']);

  // an SRV target is written whole, and a later name may point into it
  const srv: ResourceRecord = { ...rr, name: 'i._x._tcp.local', type: 'SRV', priority: 0, weight: 0, port: 1, target: 'host-7.local' };
  const a: ResourceRecord = { ...rr, name: 'host-7.local', type: 'A', address: '10.0.0.7' };
  const both = encodePacket({ ...emptyPacket(true), answers: [srv, a] });
  const alone = encodePacket({ ...emptyPacket(true), answers: [a] });
  assert.ok(both.length - alone.length < 12 + 'i._x._tcp.local'.length + 2 + 10 + 6 + 'host-7.local'.length + 2, 'the A record points at the SRV target');
  assert.deepEqual(decodePacket(both).answers, [srv, a]);
});

test('rdata of many records in a row (one writer reused) is each record\'s own', () => {
  const recs: ResourceRecord[] = [
    { ...rr, name: 'x.local', type: 'TXT', strings: Array.from({ length: 12 }, () => Buffer.alloc(250, 1)) },
    { ...rr, name: 'x.local', type: 'A', address: '10.0.0.1' },
    { ...rr, name: '_x._tcp.local', type: 'PTR', target: 'a\\.b._x._tcp.local' },
  ];
  const first = recs.map((r) => rdataOf(r).toString('hex'));
  const again = recs.map((r) => rdataOf(r).toString('hex'));
  assert.deepEqual(again, first);
  assert.equal(first[0]?.length, 2 * 12 * 251);
  assert.equal(first[1], '0a000001');
  assert.throws(() => rdataOf({ ...rr, name: 'x.local', type: 'A', address: 'nope' }));
  assert.equal(rdataOf(recs[1] as ResourceRecord).toString('hex'), '0a000001', 'a write that threw leaves nothing behind');
});

test('a record whose data does not parse is kept raw; the rest of the packet survives', () => {
  // a real python-zeroconf 0.47 response: its NSEC writes the bitmap window and length as
  // 16-bit words; the PTR, TXT, SRV and A records around it must still be usable
  const hex = '000084000000000100000004085f6578616d706c65045f746370056c6f63616c00000c0001000011940009065a4320537663c00cc02b00108001000011940007047a3d7a7a0162067a63686f7374c01a002f800100001194000ac0470000000400000008c02b00218001000000780008000000001b9ec047c047000180010000007800040a4d0003';
  const p = decodePacket(Buffer.from(hex, 'hex'));
  assert.deepEqual([...p.answers, ...p.additionals].map((r) => r.type), ['PTR', 'TXT', 'UNKNOWN', 'SRV', 'A']);
  const srv = p.additionals.find((r) => r.type === 'SRV');
  assert.equal(srv?.type === 'SRV' && srv.port, 7070);
  const raw = p.additionals.find((r) => r.type === 'UNKNOWN');
  assert.equal(raw?.type === 'UNKNOWN' && raw.rrtype, RRType.NSEC);
  // it re-encodes byte for byte as it came
  assert.equal(raw?.type === 'UNKNOWN' && raw.data.length, 10);
});

test('labels must be UTF-8, so a decoded name always encodes back exactly', () => {
  malformed(Buffer.concat([header(1, 0), Buffer.from([2, 0xff, 0xfe, 0, 0, 1, 0, 1])]));
  const name = 'caf\u00e9 \ud83d\ude00 x\\.y.local';
  const p: DnsPacket = { ...emptyPacket(false), questions: [{ name, qtype: 1, qclass: 1, unicastResponse: false }] };
  assert.equal(roundTrip(p).questions[0]?.name, name);
});

test('a decoded record is keyed from its wire rdata, and that key is the one re-encoding it gives (every type, compressed names, escapes, a BOM, fuzzed packets)', async () => {
  const { recordKey } = await import('../../../src/dnssd/codec/records.js');
  const { fuzzPackets } = await import('./fuzz-packets.js');
  // A copy carries no note from the decoder: its key comes from PacketWriter.rdata.
  const reencoded = (r: ResourceRecord): string => recordKey({ ...r });
  const rr = { ttl: 120, rrclass: CLASS_IN, cacheFlush: false };
  const p = emptyPacket(true);
  const inst = 'Mr\\. Smith\'s Printer é\uFEFF';
  p.answers.push(
    { ...rr, name: '_ipp._tcp.local', type: 'PTR', target: `${inst}._ipp._tcp.local` },
    { ...rr, name: '_IPP._tcp.local', type: 'PTR', target: `\uFEFFbom._ipp._tcp.local` },
    { ...rr, name: `${inst}._ipp._tcp.local`, type: 'SRV', priority: 1, weight: 2, port: 631, target: 'Host-A.local' },
    { ...rr, name: `${inst}._ipp._tcp.local`, type: 'TXT', strings: [Buffer.from('a=1'), Buffer.alloc(0), Buffer.from([0, 255])] },
    { ...rr, name: `${inst}._ipp._tcp.local`, type: 'TXT', strings: [] },
    { ...rr, name: 'Host-A.local', type: 'A', address: '10.0.0.7' },
    { ...rr, name: 'Host-A.local', type: 'AAAA', address: 'fe80::1:0:0:7' },
    { ...rr, name: 'Host-A.local', type: 'NSEC', next: 'Host-A.local', types: [1, 28] },
  );
  let checked = 0;
  const check = (buf: Buffer): void => {
    let d: DnsPacket;
    try {
      d = decodePacket(buf);
    } catch {
      return;
    }
    for (const r of [...d.answers, ...d.authorities, ...d.additionals]) {
      assert.equal(recordKey(r), reencoded(r), `${r.type} ${r.name}`);
      checked++;
    }
  };
  check(encodePacket(p));
  // the empty TXT's rdlength-0 form (not valid, read as one empty string)
  const bare = encodePacket({ ...emptyPacket(true), answers: [{ ...rr, name: 'x.local', type: 'TXT', strings: [Buffer.from('z')] }] });
  const zero = Buffer.concat([bare.subarray(0, bare.length - 4), Buffer.from([0, 0])]);
  const before = checked;
  check(zero);
  assert.equal(checked, before + 1, 'the rdlength-0 TXT decoded');
  for (const [buf] of fuzzPackets(3000, 7)) check(buf);
  assert.ok(checked > 1000, `${checked} records compared`);
});
