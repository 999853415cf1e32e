/**
 * Wide-area DNS-SD against real servers: BIND 9 and Knot, each started by the test on
 * loopback with a zone and a TSIG key made by the test (test/harness/dns-zone.ts, the
 * files docs/wide-area.md shows). Registration, dig's view of it, browsing, records added
 * and removed by hand with nsupdate / knsupdate, renames, leftovers, leases, refusals.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import { DnsClient, TsigKey, UnicastAdvertisement, UnicastBrowser, UnicastContext, discoverBrowseDomains, parseKeyFile, addRecord, type DnsServer } from '../../../src/dnssd/index.js';
import { CLASS_IN } from '../../../src/dnssd/codec/index.js';
import { leaseStrings } from '../../../src/dnssd/unicast/lease.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { killAllTracked, run, until } from '../../harness/proc.js';
import { skipUnless } from '../../harness/prereq.js';
import { startLoopbackDnsServer, type DnsServerRun } from '../../harness/wide-area.js';

const TYPE = '_plwa._tcp';
/** What peerlink:dnssd:wide-area published (observability is part of the contract). */
const published: Array<{ event: string; domain: string; name: string; ours?: boolean }> = [];
subscribe('peerlink:dnssd:wide-area', (m) => published.push(m as (typeof published)[number]));
const ZONE = 'example.test';

after(async () => {
  await killAllTracked();
});

/**
 * dig's short answer, lower-cased: Knot keeps every name in lower case (owner names and
 * names inside RDATA), BIND keeps the case it was given. DNS names compare
 * case-insensitively, so the tests do too (see docs/wide-area.md).
 */
async function dig(srv: DnsServerRun, name: string, type: string): Promise<string[]> {
  const r = await run('dig', ['+short', '+time=2', '+tries=2', '-p', String(srv.spec.port), '@127.0.0.1', name, type]);
  return r.stdout.split('\n').map((l) => l.trim().toLowerCase()).filter(Boolean);
}

/** nsupdate (BIND's client) or knsupdate (Knot's), with the key file; the commands differ only in the server line. */
async function handUpdate(srv: DnsServerRun, lines: string[]): Promise<void> {
  if (srv.kind === 'bind') {
    await run('nsupdate', ['-k', srv.keyPath], { input: [`server 127.0.0.1 ${srv.spec.port}`, `zone ${ZONE}`, ...lines, 'send', ''].join('\n') });
  } else {
    const keyArg = `hmac-sha256:${srv.spec.keyName}:${srv.spec.secret}`;
    const keyFile = join(srv.spec.dir, 'knsupdate.key');
    writeFileSync(keyFile, `${keyArg}\n`, { mode: 0o600 });
    await run('knsupdate', ['-k', keyFile], { input: [`server 127.0.0.1 ${srv.spec.port}`, `zone ${ZONE}`, 'origin ' + ZONE + '.', ...lines, 'send', ''].join('\n') });
  }
}

for (const kind of ['bind', 'knot'] as const) {
  const skip = skipUnless(kind);
  describe(`wide-area DNS-SD against ${kind === 'bind' ? 'BIND 9' : 'Knot'}`, { skip, concurrency: false, timeout: 300_000 }, () => {
    let srv: DnsServerRun;
    let server: DnsServer;
    let key: TsigKey;
    // never the system's resolvers: only the server this file started on loopback
    const ctx = (k: TsigKey | null = key): UnicastContext => {
      if (!server) throw new Error('the DNS server did not start (run the whole file: every test needs the first)');
      return ctxFor(k);
    };
    const ctxFor = (k: TsigKey | null): UnicastContext => new UnicastContext({ dnsServer: server, ...(k ? { tsig: k } : {}), client: new DnsClient({ timeoutMs: 3000 }) });

    test('server starts with the test zone', async () => {
      srv = await startLoopbackDnsServer(kind, ZONE);
      server = { address: '127.0.0.1', port: srv.spec.port };
      key = parseKeyFile(srv.keyFile);
      assert.deepEqual(await discoverBrowseDomains(ctx(), [ZONE]), [
        { domain: ZONE, kind: 'b', from: ZONE },
        { domain: ZONE, kind: 'lb', from: ZONE },
      ]);
    });

    test('a registration is what dig expects (PTR → SRV/TXT → A), our browser sees it, stop removes it', async () => {
      const ad = new UnicastAdvertisement(ctx(), { name: 'Alpha Peer', type: TYPE, port: 4242, domain: ZONE, txt: { v: '1' }, addresses: ['10.9.8.7', 'fd00::7'], lease: 60, ttl: 2 });
      assert.equal(await ad.start(), 'Alpha Peer');
      assert.deepEqual(await dig(srv, `${TYPE}.${ZONE}`, 'PTR'), [`alpha\\032peer.${TYPE}.${ZONE}.`]);
      const srvRec = await dig(srv, `Alpha\\ Peer.${TYPE}.${ZONE}`, 'SRV');
      assert.equal(srvRec.length, 1);
      const [, , port, target] = (srvRec[0] as string).split(' ');
      assert.equal(port, '4242');
      assert.match(target as string, new RegExp(`^pl-[0-9a-f]{16}\\.${ZONE.replace('.', '\\.')}\\.$`));
      assert.deepEqual(await dig(srv, target as string, 'A'), ['10.9.8.7']);
      assert.deepEqual(await dig(srv, target as string, 'AAAA'), ['fd00::7']);
      const txt = (await dig(srv, `Alpha\\ Peer.${TYPE}.${ZONE}`, 'TXT')).join(' ');
      assert.match(txt, /"v=1"/);
      assert.match(txt, /"pl-expires=\d+"/);

      const b = new UnicastBrowser(ctx(null), { type: TYPE, domain: ZONE, maxInterval: 2 });
      const added = new Promise<unknown>((r) => b.once('added', r));
      b.start();
      const s = (await added) as { name: string; domain: string; port: number; addresses: string[]; txt: Record<string, string | null> };
      assert.equal(s.name.toLowerCase(), 'alpha peer');
      assert.equal(s.domain, ZONE);
      assert.equal(s.port, 4242);
      assert.deepEqual(s.addresses, ['10.9.8.7', 'fd00::7']);
      assert.deepEqual(s.txt, { v: '1' });
      const removed = new Promise<unknown>((r) => b.once('removed', r));
      await ad.stop();
      await removed;
      b.stop();
      assert.deepEqual(await dig(srv, `${TYPE}.${ZONE}`, 'PTR'), []);
      assert.deepEqual(await dig(srv, target as string, 'A'), []);
    });

    test(`a service added by hand with ${kind === 'bind' ? 'nsupdate' : 'knsupdate'} is seen by our browser, and its removal too`, async () => {
      const b = new UnicastBrowser(ctx(null), { type: TYPE, domain: ZONE, maxInterval: 1 });
      b.start();
      await b.nextRound();
      const added = new Promise<{ name: string; port: number; addresses: string[] }>((r) => b.once('added', r));
      await handUpdate(srv, [
        `update add ${TYPE}.${ZONE}. 2 PTR Hand.${TYPE}.${ZONE}.`,
        `update add Hand.${TYPE}.${ZONE}. 2 SRV 0 0 7000 handhost.${ZONE}.`,
        `update add Hand.${TYPE}.${ZONE}. 2 TXT "by=hand"`,
        `update add handhost.${ZONE}. 2 A 10.1.1.1`,
      ]);
      const s = await added;
      assert.deepEqual([s.name.toLowerCase(), s.port, s.addresses], ['hand', 7000, ['10.1.1.1']]);
      const removed = new Promise<{ name: string }>((r) => b.once('removed', r));
      await handUpdate(srv, [`update delete ${TYPE}.${ZONE}. PTR Hand.${TYPE}.${ZONE}.`, `update delete Hand.${TYPE}.${ZONE}.`, `update delete handhost.${ZONE}.`]);
      assert.equal((await removed).name.toLowerCase(), 'hand');
      b.stop();
    });

    test('a name held by someone else is renamed "Name (2)"; our own leftover (same token) is replaced and the name taken back', async () => {
      const other = new UnicastAdvertisement(ctx(), { name: 'Beta', type: TYPE, port: 1, domain: ZONE, addresses: ['10.0.0.1'], token: 'aaaaaaaaaaaaaaaa' });
      await other.start();
      const ours = new UnicastAdvertisement(ctx(), { name: 'Beta', type: TYPE, port: 2, domain: ZONE, addresses: ['10.0.0.2'], token: 'bbbbbbbbbbbbbbbb' });
      const renamed = new Promise<{ from: string; name: string }>((r) => ours.once('renamed', r));
      assert.equal(await ours.start(), 'Beta (2)');
      assert.deepEqual(await renamed, { from: 'Beta', name: 'Beta (2)' });
      // a restart of "ours": same token, new run, previous records still there (never stopped)
      const restarted = new UnicastAdvertisement(ctx(), { name: 'Beta', type: TYPE, port: 3, domain: ZONE, addresses: ['10.0.0.3'], token: 'bbbbbbbbbbbbbbbb' });
      // it asks for "Beta" (held by other) first, then "Beta (2)": its own, replaced
      assert.equal(await restarted.start(), 'Beta (2)');
      assert.ok(published.some((m) => m.event === 'replaced' && m.name === 'Beta (2)' && m.ours === true));
      const srvs = await dig(srv, `Beta\\ \\(2\\).${TYPE}.${ZONE}`, 'SRV');
      assert.equal(srvs.length, 1);
      assert.equal((srvs[0] as string).split(' ')[2], '3');
      const ptrs = await dig(srv, `${TYPE}.${ZONE}`, 'PTR');
      assert.equal(ptrs.filter((p) => p.startsWith('beta\\032\\(2\\)')).length, 1, ptrs.join('\n'));
      // the displaced run's stop leaves the new owner alone
      await ours.stop();
      assert.equal((await dig(srv, `Beta\\ \\(2\\).${TYPE}.${ZONE}`, 'SRV')).length, 1);
      await restarted.stop();
      await other.stop();
      assert.deepEqual(await dig(srv, `${TYPE}.${ZONE}`, 'PTR'), []);
    });

    test("a dead process's registration disappears from browsers when its lease ends, and a key holder removes it", async () => {
      // what a killed process leaves: records whose lease nobody renews
      const client = new DnsClient();
      const now = Math.floor(Date.now() / 1000);
      const base = { ttl: 1, rrclass: CLASS_IN, cacheFlush: false };
      const fqdn = `Ghost.${TYPE}.${ZONE}`;
      const host = `pl-cccccccc00000000.${ZONE}`;
      const rc = await client.update(
        server,
        {
          zone: ZONE,
          prerequisites: [],
          updates: [
            { ...base, name: `${TYPE}.${ZONE}`, type: 'PTR', target: fqdn },
            { ...base, name: fqdn, type: 'SRV', priority: 0, weight: 0, port: 9, target: host },
            { ...base, name: fqdn, type: 'TXT', strings: leaseStrings(now + 4, 'cccccccccccccccc', '00000000') },
            { ...base, name: host, type: 'A', address: '10.6.6.6' },
          ].map((r) => addRecord(r as Parameters<typeof addRecord>[0])),
        },
        key,
      );
      assert.equal(rc, 0);
      const keyless = new UnicastBrowser(ctx(null), { type: TYPE, domain: ZONE, maxInterval: 1 });
      const seen = new Promise<unknown>((r) => keyless.once('added', r));
      const gone = new Promise<unknown>((r) => keyless.once('removed', r));
      keyless.start();
      await seen;
      await gone; // within the lease (4 s) plus a poll
      assert.ok(Date.now() / 1000 >= now + 4 - 1);
      // keyless browsers do not touch the zone
      assert.equal((await dig(srv, fqdn, 'SRV')).length, 1);
      keyless.stop();
      const holder = new UnicastBrowser(ctx(), { type: TYPE, domain: ZONE, maxInterval: 1 });
      holder.start();
      await until(async () => (await dig(srv, fqdn, 'SRV')).length === 0 && (await dig(srv, host, 'A')).length === 0, 20_000, 'expired records removed');
      assert.deepEqual(await dig(srv, `${TYPE}.${ZONE}`, 'PTR'), []);
      assert.ok(published.some((m) => m.event === 'expired-removed' && m.name.toLowerCase() === fqdn.toLowerCase()));
      holder.stop();
    });

    test('a refresh renews the lease; a missing or wrong key is refused with ERR_DNS_UPDATE_REFUSED, never sent unsigned instead', async () => {
      const ad = new UnicastAdvertisement(ctx(), { name: 'Renew', type: TYPE, port: 5, domain: ZONE, addresses: ['10.0.0.5'], lease: 4 });
      await ad.start();
      const exp1 = Number(/pl-expires=(\d+)/.exec((await dig(srv, `Renew.${TYPE}.${ZONE}`, 'TXT')).join(' '))?.[1]);
      await until(async () => Number(/pl-expires=(\d+)/.exec((await dig(srv, `Renew.${TYPE}.${ZONE}`, 'TXT')).join(' '))?.[1]) > exp1, 15_000, 'lease renewed', 500);
      await ad.stop();
      for (const k of [null, new TsigKey(key.name, 'hmac-sha256', Buffer.alloc(32, 9)), new TsigKey('not-a-key', 'hmac-sha256', Buffer.alloc(32, 9))]) {
        const bad = new UnicastAdvertisement(ctx(k), { name: 'Refused', type: TYPE, port: 6, domain: ZONE, addresses: ['10.0.0.6'] });
        await assert.rejects(bad.start(), (e: unknown) => isPeerlinkError(e, 'ERR_DNS_UPDATE_REFUSED'));
      }
      assert.deepEqual(await dig(srv, `Refused.${TYPE}.${ZONE}`, 'SRV'), []);
    });

    test('a TXT update is written at once; records removed behind our back come back at the next refresh', async () => {
      const ad = new UnicastAdvertisement(ctx(), { name: 'Comeback', type: TYPE, port: 8, domain: ZONE, txt: { v: '1' }, addresses: ['10.0.0.8'], lease: 4 });
      await ad.start();
      await ad.update({ v: '2' });
      assert.match((await dig(srv, `comeback.${TYPE}.${ZONE}`, 'TXT')).join(' '), /"v=2"/);
      await handUpdate(srv, [`update delete ${TYPE}.${ZONE}. PTR Comeback.${TYPE}.${ZONE}.`, `update delete Comeback.${TYPE}.${ZONE}.`]);
      assert.deepEqual(await dig(srv, `comeback.${TYPE}.${ZONE}`, 'SRV'), []);
      await until(async () => (await dig(srv, `comeback.${TYPE}.${ZONE}`, 'SRV')).length === 1, 15_000, 'registration restored', 500);
      assert.deepEqual(await dig(srv, `${TYPE}.${ZONE}`, 'PTR'), [`comeback.${TYPE}.${ZONE}.`]);
      assert.equal(ad.name, 'Comeback');
      await ad.stop();
    });

    test('server stops', async () => {
      await srv.proc.stop();
    });
  });
}
