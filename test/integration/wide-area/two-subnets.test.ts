/**
 * Two hosts on different subnets, joined by a router that forwards unicast and no
 * multicast, with the zone's primary (BIND, then Knot) on the router: mDNS cannot cross,
 * the peerlink CLI finds the other side through the DNS zone (`--domain`), connects,
 * chats and sends a file. Interop with dig and avahi-browse; refusals; stop, kill + lease,
 * restart.
 */
import { after, before, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killAllTracked, noLineWithin, parseJsonLine, until, waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { skipUnless } from '../../harness/prereq.js';
import { PEERLINK_BIN } from '../../harness/paths.js';
import { createRoutedLab, startDnsServer, type DnsServerRun, type RoutedLab } from '../../harness/wide-area.js';
import { startAvahi } from '../../harness/avahi.js';

const ZONE = 'example.test';

for (const kind of ['bind', 'knot'] as const) {
  const skip = skipUnless('netns', kind, 'dig');
  describe(`two subnets, one ${kind === 'bind' ? 'BIND' : 'Knot'} zone`, { skip, concurrency: false, timeout: 600_000 }, () => {
    let r: RoutedLab;
    let dns: DnsServerRun;
    let keyPath: string;
    const netnsEtc: string[] = [];

    before(async () => {
      if (skip) return;
      r = await createRoutedLab(`wa${kind[0]}`);
      dns = await startDnsServer(r.lab, r.router, kind, { zone: ZONE, address: r.dnsAddress });
      keyPath = dns.keyPath;
      const pskFile = join(r.lab.runDir, 'psk.hex');
      writeFileSync(pskFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
      psk = ['--psk-file', pskFile];
      // what `ip netns exec` shows as /etc/resolv.conf in each host: the zone's server, the zone as search domain
      for (const ns of [r.a, r.b]) {
        const dir = `/etc/netns/${ns}`;
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'resolv.conf'), `nameserver ${r.dnsAddress}\nsearch ${ZONE}\n`);
        netnsEtc.push(dir);
      }
    });

    after(async () => {
      await killAllTracked();
      await r?.lab.teardown();
      for (const d of netnsEtc) rmSync(d, { recursive: true, force: true });
    });

    const wa = (withKey = true): string[] => ['--domain', ZONE, ...(withKey ? ['--tsig-file', keyPath] : [])];
    /** Session commands: one TLS pre-shared key (no first-contact codes to compare in a test). */
    let psk: string[] = [];
    const pl = (ns: string, args: string[], label: string): TrackedProcess => r.lab.spawnNode(ns, PEERLINK_BIN, args, { label: `${ns}: ${label}` });
    const dig = async (ns: string, name: string, type: string): Promise<string[]> => {
      const res = await r.lab.exec(ns, 'dig', ['+short', '+time=2', '+tries=2', name, type]);
      return res.stdout.split('\n').map((l) => l.trim().toLowerCase()).filter(Boolean);
    };

    test('mDNS does not cross the router; through the zone the two hosts find each other, chat and send a file', async () => {
      // mDNS only: b never hears a's advertisement
      const mdnsOnly = pl(r.a, ['advertise', 'Lonely', '_plwa._tcp', '4000', '--json'], 'advertise mDNS');
      await waitForJson(mdnsOnly, (e) => e.event === 'registered', 30_000);
      const blind = pl(r.b, ['browse', '_plwa._tcp', '--json', '--timeout', '5'], 'browse mDNS');
      assert.ok(await noLineWithin(blind, (l) => parseJsonLine(l)?.event === 'added', 6000), 'mDNS crossed the router');
      await mdnsOnly.stop();

      // through DNS: a receiver on b registers; a sender on a finds it in the zone and sends
      const dir = join(r.lab.runDir, `recv-${kind}`);
      mkdirSync(dir, { recursive: true });
      const recv = pl(r.b, ['receive', '--service', 'plwa', '--name', 'Bee', '--yes', '--dir', dir, '--json', ...psk, ...wa()], 'receive');
      const reg = await waitForJson(recv, (e) => e.event === 'registered' && e.domain === ZONE, 30_000);
      assert.equal(String(reg.name).toLowerCase(), 'bee');
      // what dig sees: PTR → SRV/TXT → A (b's own address, on the other subnet)
      const ptr = await dig(r.a, `_plwa._tcp.${ZONE}`, 'PTR');
      assert.deepEqual(ptr, [`bee._plwa._tcp.${ZONE}.`]);
      const srv = await dig(r.a, `bee._plwa._tcp.${ZONE}`, 'SRV');
      const target = (srv[0] ?? '').split(' ')[3] as string;
      assert.deepEqual(await dig(r.a, target, 'A'), [r.bAddress]);
      assert.match((await dig(r.a, `bee._plwa._tcp.${ZONE}`, 'TXT')).join(' '), /"pl-expires=\d+"/);

      const file = join(r.lab.runDir, `hello-${kind}.txt`);
      writeFileSync(file, `hello across the router (${kind})\n`);
      // the sender uses /etc/resolv.conf (no --dns-server) and has no key: browsing needs none
      const send = pl(r.a, ['send', '--service', 'plwa', '--json', '--timeout', '60', '--to', 'Bee', ...psk, ...wa(false), file], 'send');
      await waitForJson(send, (e) => e.event === 'sent', 60_000);
      const got = await waitForJson(recv, (e) => e.event === 'received', 30_000);
      assert.equal(readFileSync(String(got.path), 'utf8'), `hello across the router (${kind})\n`);
      assert.equal((await send.exited).code, 0);
      await recv.stop();
      // stop removes our records
      assert.deepEqual(await dig(r.a, `_plwa._tcp.${ZONE}`, 'PTR'), []);
      assert.deepEqual(await dig(r.a, target, 'A'), []);

      // chat: both register and browse; a line typed on a arrives on b
      const chatB = r.lab.spawn(r.b, process.execPath, [PEERLINK_BIN, 'chat', '--service', 'plwachat', '--name', 'Bob', '--json', ...psk, ...wa()], { stdin: true, label: 'chat b' });
      const chatA = r.lab.spawn(r.a, process.execPath, [PEERLINK_BIN, 'chat', '--service', 'plwachat', '--name', 'Ann', '--json', ...psk, ...wa()], { stdin: true, label: 'chat a' });
      await waitForJson(chatA, (e) => e.event === 'peer' && e.state === 'connected', 60_000);
      await waitForJson(chatB, (e) => e.event === 'peer' && e.state === 'connected', 60_000);
      chatA.writeLine('hello Bob, from another subnet');
      const msg = await waitForJson(chatB, (e) => e.event === 'message', 30_000);
      assert.equal(msg.text, 'hello Bob, from another subnet');
      await Promise.all([chatA.stop(), chatB.stop()]);
    });

    test('interop: avahi-browse -d ZONE resolves our registration; browse --discover-domains / --domains find the zone from resolv.conf', async () => {
      const adv = pl(r.b, ['advertise', 'Shown To Avahi', '_plwa._tcp', '4100', 'k=v', '--json', ...wa()], 'advertise');
      await waitForJson(adv, (e) => e.event === 'registered' && e.domain === ZONE, 30_000);
      const avahi = await startAvahi(r.lab, r.a, { wideArea: true, serverConf: ['use-ipv6=no'] });
      const res = await r.lab.exec(r.a, 'avahi-browse', ['-d', ZONE, '-r', '-p', '-t', '_plwa._tcp'], { env: avahi.env, timeoutMs: 30_000, check: false });
      const resolved = res.stdout.split('\n').filter((l) => l.startsWith('='));
      assert.ok(resolved.some((l) => /shown\\032to\\032avahi/i.test(l) && l.includes(r.bAddress) && l.includes(';4100;') && l.includes('"k=v"')), `avahi-browse said:\n${res.stdout}\n${res.stderr}`);
      await avahi.stop();
      // no --domain at all: the zone is found as a browse domain under resolv.conf's search domain
      const auto = pl(r.a, ['browse', '_plwa._tcp', '--discover-domains', '--json'], 'browse --discover-domains');
      const seen = await waitForJson(auto, (e) => e.event === 'added' && e.domain === ZONE, 30_000);
      assert.match(String(seen.name), /^shown to avahi$/i);
      await auto.stop();
      // stop (SIGTERM) removes the records
      await adv.stop();
      assert.deepEqual(await dig(r.a, `_plwa._tcp.${ZONE}`, 'PTR'), []);
      const domains = pl(r.a, ['browse', '--domains', '--json'], 'browse --domains');
      const d = await waitForJson(domains, (e) => e.event === 'domain' && e.kind === 'b', 20_000);
      assert.equal(d.domain, ZONE);
    });

    test('a wrong or missing key is refused: exit 1 with ERR_DNS_UPDATE_REFUSED, nothing registered', async () => {
      const bad = join(r.lab.runDir, `bad-${kind}.key`);
      writeFileSync(bad, `key "peerlink-key" {\n\talgorithm hmac-sha256;\n\tsecret "${Buffer.alloc(32, 3).toString('base64')}";\n};\n`);
      for (const args of [['--tsig-file', bad], []]) {
        const p = pl(r.b, ['advertise', 'Refused', '_plwa._tcp', '4200', '--domain', ZONE, ...args], 'advertise refused');
        const ex = await p.exited;
        assert.equal(ex.code, 1, p.tail());
        assert.match(p.stderrLines.join('\n'), /ERR_DNS_UPDATE_REFUSED/);
      }
      assert.deepEqual(await dig(r.a, `refused._plwa._tcp.${ZONE}`, 'SRV'), []);
    });

    test("a killed advertiser's records stop being reported within its lease, are removed by a key holder, and a restart takes its name back", async () => {
      const lease = ['--lease', '6'];
      const first = pl(r.b, ['advertise', 'Phoenix', '_plwa._tcp', '4300', '--json', ...wa(), ...lease], 'advertise 1');
      await waitForJson(first, (e) => e.event === 'registered' && e.domain === ZONE, 30_000);
      first.signal('SIGKILL');
      await first.exited;
      // restarted at once: same host, same name → its own leftover, replaced (no "Phoenix (2)")
      const again = pl(r.b, ['advertise', 'Phoenix', '_plwa._tcp', '4301', '--json', ...wa(), ...lease], 'advertise 2');
      const reg = await waitForJson(again, (e) => e.event === 'registered' && e.domain === ZONE, 30_000);
      assert.equal(String(reg.name).toLowerCase(), 'phoenix');
      assert.equal((await dig(r.a, `phoenix._plwa._tcp.${ZONE}`, 'SRV'))[0]?.split(' ')[2], '4301');
      again.signal('SIGKILL');
      await again.exited;
      // a keyless browser stops reporting it once the lease is over
      const watcher = pl(r.a, ['browse', '_plwa._tcp', '--json', ...wa(false)], 'browse');
      await waitForJson(watcher, (e) => e.event === 'added' && String(e.name).toLowerCase() === 'phoenix', 20_000);
      await waitForJson(watcher, (e) => e.event === 'removed' && String(e.name).toLowerCase() === 'phoenix', 30_000);
      assert.equal((await dig(r.a, `phoenix._plwa._tcp.${ZONE}`, 'SRV')).length, 1, 'a keyless browser must not touch the zone');
      // the next peer holding the key removes the leftovers
      const holder = pl(r.a, ['browse', '_plwa._tcp', '--json', ...wa()], 'browse with key');
      await until(async () => (await dig(r.a, `phoenix._plwa._tcp.${ZONE}`, 'SRV')).length === 0, 30_000, 'expired records removed');
      assert.deepEqual((await dig(r.a, `_plwa._tcp.${ZONE}`, 'PTR')).filter((p) => p.startsWith('phoenix')), []);
      await Promise.all([watcher.stop(), holder.stop()]);
    });

    test('a host with no multicast-capable interface still registers and browses in the unicast domain', async () => {
      await r.lab.exec(r.b, 'ip', ['route', 'del', '224.0.0.0/4']);
      await r.lab.exec(r.b, 'ip', ['link', 'set', 'eth0', 'multicast', 'off']);
      try {
        const adv = pl(r.b, ['advertise', 'NoMulticast', '_plwa._tcp', '4400', '--json', ...wa()], 'advertise no multicast');
        await waitForJson(adv, (e) => e.event === 'registered' && e.domain === ZONE, 30_000);
        const seen = pl(r.b, ['browse', '_plwa._tcp', '--json', ...wa(false)], 'browse no multicast');
        const got = await waitForJson(seen, (e) => e.event === 'added' && String(e.name).toLowerCase() === 'nomulticast', 30_000);
        assert.deepEqual(got.addresses, [r.bAddress]);
        await Promise.all([adv.stop(), seen.stop()]);
      } finally {
        await r.lab.exec(r.b, 'ip', ['link', 'set', 'eth0', 'multicast', 'on']);
        await r.lab.exec(r.b, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
      }
    });
  });
}
