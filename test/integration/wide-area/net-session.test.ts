/**
 * Wide area through the library's upper layers, against BIND on loopback: a net Listener
 * registers its service in the zone, a net Browser finds it there and a Connection reaches
 * it (from a fresh browse hint, and resolved again through DNS); two PeerSessions with
 * `wideArea` find each other through the zone. mDNS runs on `lo` only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Browser, Connection, Listener, Parameters, type BrowseResult, type ServiceRegistration } from '../../../src/net/index.js';
import { PeerSession } from '../../../src/session/index.js';
import { parseKeyFile, type WideAreaOptions } from '../../../src/dnssd/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { killAllTracked } from '../../harness/proc.js';
import { skipUnless } from '../../harness/prereq.js';
import { startLoopbackDnsServer, type DnsServerRun } from '../../harness/wide-area.js';

const ZONE = 'example.test';
const skip = skipUnless('bind');

describe('wide area in net and session (BIND on loopback)', { skip, concurrency: false, timeout: 120_000 }, () => {
  let dns: DnsServerRun;
  let wa: (withKey?: boolean) => WideAreaOptions;

  before(async () => {
    if (skip) return;
    dns = await startLoopbackDnsServer('bind', ZONE);
    const key = parseKeyFile(dns.keyFile);
    wa = (withKey = true) => ({ domains: [ZONE], dnsServer: `127.0.0.1:${dns.spec.port}`, addresses: ['127.0.0.1'], maxBrowseInterval: 1, ...(withKey ? { tsig: key } : {}) });
  });
  after(async () => {
    await killAllTracked();
  });

  test('Listener registers in the zone; Browser finds it there; Connection reaches it, also resolved again through DNS', async () => {
    const type = `_pl${randomBytes(3).toString('hex')}._tcp`;
    const p = Parameters.tcp({ framer: true });
    const l = new Listener(p, { host: '127.0.0.1', service: { name: 'Far Away', type, interfaces: ['lo'], txt: { v: '1' }, wideArea: wa() } });
    const regs: ServiceRegistration[] = [];
    const inZone = new Promise<ServiceRegistration>((r) =>
      l.on('serviceRegistration', (x) => {
        regs.push(x);
        if (x.domain === `${ZONE}.` && x.change === 'registered') r(x);
      }),
    );
    l.on('connection', (c) => void (async () => {
      for await (const m of c.messages()) await c.send(m);
    })().catch(() => undefined));
    await l.start();
    assert.equal((await inZone).name, 'Far Away');
    const b = new Browser({ type, interfaces: ['lo'], wideArea: wa(false) });
    const found = new Promise<BrowseResult>((r) => b.on('added', (x) => x.endpoint.domain.replace(/\.$/, '') === ZONE && r(x)));
    await b.start();
    const res = await found;
    assert.equal(res.endpoint.name, 'Far Away');
    assert.deepEqual(res.interfaces, []);
    assert.deepEqual(res.txt, { v: '1' });
    const c = await Connection.connect(res.endpoint, p);
    await c.send('through the zone');
    assert.equal(String(await c.receiveMessage()), 'through the zone');
    c.cancel();
    // once the browse hint is stale (5 s), the endpoint is resolved again through the zone's server
    await new Promise((r) => setTimeout(r, 5500));
    const c2 = await Connection.connect(res.endpoint, p);
    await c2.send('resolved again');
    assert.equal(String(await c2.receiveMessage()), 'resolved again');
    c2.cancel();
    const removed = new Promise<BrowseResult>((r) => b.on('removed', (x) => x.endpoint.domain.replace(/\.$/, '') === ZONE && r(x)));
    await l.cancel();
    await removed;
    assert.ok(regs.some((x) => x.domain === `${ZONE}.` && x.change === 'removed'));
    await b.cancel();
  });

  test('a Listener whose update is refused reports change "failed" with ERR_DNS_UPDATE_REFUSED and keeps listening', async () => {
    const type = `_pl${randomBytes(3).toString('hex')}._tcp`;
    const l = new Listener(Parameters.tcp({ framer: true }), { host: '127.0.0.1', service: { name: 'No Key', type, interfaces: ['lo'], wideArea: wa(false) } });
    const failed = new Promise<ServiceRegistration>((r) => l.on('serviceRegistration', (x) => x.change === 'failed' && r(x)));
    await l.start();
    const f = await failed;
    assert.equal(f.domain, `${ZONE}.`);
    assert.equal(f.error?.code, 'ERR_DNS_UPDATE_REFUSED');
    assert.equal(l.state, 'ready');
    await l.cancel();
  });

  test('two PeerSessions with wideArea find each other through the zone and exchange a message', async () => {
    const service = `w${randomBytes(3).toString('hex')}`;
    // mDNS on lo finds them as well (merged into the same peers); test/integration/wide-area/two-subnets.test.ts proves DNS alone across a router
    const mk = (name: string): PeerSession => new PeerSession({ serviceType: service, displayName: name, interfaces: ['lo'], wideArea: wa() });
    const a = mk('Ann');
    const b = mk('Bob');
    const advertised = new Promise<{ domain: string; name: string }>((r) => a.once('advertisedWideArea', r));
    await a.start();
    assert.deepEqual(await advertised, { domain: ZONE, name: 'Ann' });
    await b.start();
    const got = new Promise<string>((r) => a.on('message', (m) => r(String(m))));
    await new Promise<void>((r) => b.on('peer', (_p, state) => state === 'connected' && r()));
    b.send(Buffer.from('hello via DNS'));
    assert.equal(await got, 'hello via DNS');
    await Promise.all([a.close(), b.close()]);
  });

  test('a PeerSession whose registration is refused fails start() with ERR_DNS_UPDATE_REFUSED', async () => {
    const s = new PeerSession({ serviceType: `w${randomBytes(3).toString('hex')}`, interfaces: ['lo'], wideArea: wa(false) });
    await assert.rejects(s.start(), (e: unknown) => isPeerlinkError(e, 'ERR_DNS_UPDATE_REFUSED'));
  });
});
