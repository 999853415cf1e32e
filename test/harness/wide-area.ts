/**
 * A routed lab for wide-area DNS-SD: hosts `a` (10.77.1.2/24) and `b` (10.77.2.2/24) on two
 * subnets joined by a router namespace `r` (10.77.1.1, 10.77.2.1) that forwards unicast
 * (ip_forward=1) and no multicast (no multicast routing daemon): mDNS cannot cross, DNS can.
 * The zone's primary (BIND or Knot, files from ./dns-zone.ts) runs on the router at
 * 10.77.1.1:53. IPv4 only, to keep the addresses predictable.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from './netns.js';
import { run, sleep, spawnTracked, type ExecResult, type TrackedProcess } from './proc.js';
import { secretOf, tsigKeygen, writeZone, type ServerKind, type ZoneSpec } from './dns-zone.js';

export interface RoutedLab {
  lab: Lab;
  router: string;
  a: string;
  b: string;
  aAddress: string;
  bAddress: string;
  dnsAddress: string;
}

async function ip(args: string[]): Promise<void> {
  await run('ip', args);
}

export async function createRoutedLab(tag = 'wan'): Promise<RoutedLab> {
  const lab = await createLab({ hosts: 0, tag });
  const r = `${lab.prefix}-r`;
  const a = `${lab.prefix}-a`;
  const b = `${lab.prefix}-b`;
  try {
    for (const ns of [r, a, b]) {
      await ip(['netns', 'add', ns]);
      lab.extraNamespaces.push(ns);
      await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await run('ip', ['netns', 'exec', r, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    const legs: Array<[string, string, string]> = [
      [a, 'ra', '1'],
      [b, 'rb', '2'],
    ];
    for (const [ns, leg, net] of legs) {
      await ip(['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', leg, 'netns', r]);
      await ip(['-n', r, 'addr', 'add', `10.77.${net}.1/24`, 'dev', leg]);
      await ip(['-n', r, 'link', 'set', leg, 'up']);
      await ip(['-n', ns, 'addr', 'add', `10.77.${net}.2/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await ip(['-n', ns, 'route', 'add', 'default', 'via', `10.77.${net}.1`]);
      // mDNS works on each subnet (the engine has its interface); it just cannot cross r
      await ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    }
    // a new veth carries nothing until the kernel has activated it (linkwatch, deferred and
    // slow on a loaded machine): wait until each host reaches the router's DNS address
    for (const ns of [a, b]) {
      const deadline = Date.now() + 60_000;
      while (!(await lab.reach(ns, '10.77.1.1', 2000))) {
        if (Date.now() > deadline) throw new Error(`${ns} cannot reach the router at 10.77.1.1`);
        await sleep(250);
      }
    }
  } catch (err) {
    await lab.teardown();
    throw err;
  }
  return { lab, router: r, a, b, aAddress: '10.77.1.2', bAddress: '10.77.2.2', dnsAddress: '10.77.1.1' };
}

export interface DnsServerRun {
  kind: ServerKind;
  spec: ZoneSpec;
  keyFile: string;
  /** Path of the key file (BIND format) for --tsig-file / nsupdate -k. */
  keyPath: string;
  proc: TrackedProcess;
}

/**
 * Starts BIND (`named -g`) or Knot (`knotd`) with a fresh zone and key, in namespace `ns`
 * of `lab`, or (no lab) on loopback in this namespace; resolves once it answers SOA.
 */
export async function startDnsServer(lab: Lab | undefined, ns: string, kind: ServerKind, opts: { zone?: string; address: string; port?: number; dir?: string }): Promise<DnsServerRun> {
  const keyName = 'peerlink-key';
  const keyFile = tsigKeygen(keyName);
  const dir = opts.dir ?? (lab ? join(lab.runDir, `${kind}-${ns}`) : mkdtempSync(join(tmpdir(), `peerlink-${kind}-`)));
  const spec: ZoneSpec = { zone: opts.zone ?? 'example.test', keyName, secret: secretOf(keyFile), address: opts.address, port: opts.port ?? 53, dir };
  const conf = writeZone(kind, spec, keyFile);
  const [cmd, args] = kind === 'bind' ? ['/usr/sbin/named', ['-g', '-c', conf]] : ['/usr/sbin/knotd', ['-c', conf]];
  const proc = lab ? lab.spawn(ns, cmd, args, { label: `${ns}: ${kind}` }) : spawnTracked(cmd, args, { label: kind });
  const exec = (c: string, a: string[]): Promise<ExecResult> => (lab ? lab.exec(ns, c, a, { check: false }) : run(c, a, { check: false }));
  // the real check that a server is up is that it answers
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await exec('dig', ['+short', '+time=1', '+tries=1', '-p', String(spec.port), `@${spec.address}`, spec.zone, 'SOA']);
    if (r.code === 0 && r.stdout.trim() !== '') break;
    if (Date.now() > deadline || !proc.running) throw new Error(`${kind} did not start: ${proc.tail()}`);
    await sleep(250);
  }
  return { kind, spec, keyFile, keyPath: join(spec.dir, `${keyName}.key`), proc };
}

/** A free-looking high port for a loopback server (collisions are retried by the caller). */
export function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

/** Starts a server on 127.0.0.1 in this namespace (loopback only), retrying another port if one is taken. */
export async function startLoopbackDnsServer(kind: ServerKind, zone = 'example.test'): Promise<DnsServerRun> {
  let lastErr: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      return await startDnsServer(undefined, '', kind, { zone, address: '127.0.0.1', port: randomPort() });
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}
