/**
 * Test prerequisites. Outside CI a missing prerequisite skips the test and says
 * plainly what did not run and why; under CI=true it is a failure, because
 * .ci/run installs everything and nothing may be left out silently.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';

export type Requirement = 'root' | 'netns' | 'avahi' | 'zeroconf' | 'openssl' | 'python-websockets' | 'python-dbus' | 'dig' | 'nft' | 'bind' | 'knot';

const cache = new Map<Requirement, string | null>();

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Returns null when the requirement is met, or the reason it is not. */
export function missing(req: Requirement): string | null {
  if (cache.has(req)) return cache.get(req) ?? null;
  let why: string | null = null;
  switch (req) {
    case 'root':
      if (process.getuid?.() !== 0) why = 'needs root';
      break;
    case 'netns':
      if (process.getuid?.() !== 0) why = 'network namespaces need root';
      else if (!which('ip')) why = 'iproute2 (`ip`) is not installed';
      else {
        const name = `plprobe-${process.pid}`;
        try {
          execFileSync('ip', ['netns', 'add', name], { stdio: 'ignore' });
          execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
        } catch {
          why = '`ip netns add` failed (no permission for network namespaces here)';
        }
      }
      break;
    case 'avahi':
      if (!which('avahi-daemon') || !which('avahi-browse') || !which('avahi-publish') || !which('dbus-daemon'))
        why = 'Avahi is not installed (apt-get install avahi-daemon avahi-utils dbus)';
      break;
    case 'zeroconf':
      if (!existsSync('/usr/bin/python3') || spawnSync('/usr/bin/python3', ['-c', 'import zeroconf'], { stdio: 'ignore' }).status !== 0)
        why = 'python3-zeroconf is not installed for /usr/bin/python3 (apt-get install python3-zeroconf)';
      break;
    case 'python-websockets':
      if (!existsSync('/usr/bin/python3') || spawnSync('/usr/bin/python3', ['-c', 'import websockets'], { stdio: 'ignore' }).status !== 0)
        why = 'python3-websockets is not installed for /usr/bin/python3 (apt-get install python3-websockets)';
      break;
    case 'python-dbus':
      if (!existsSync('/usr/bin/python3') || spawnSync('/usr/bin/python3', ['-c', 'import dbus'], { stdio: 'ignore' }).status !== 0)
        why = 'python3-dbus is not installed for /usr/bin/python3 (apt-get install python3-dbus)';
      break;
    case 'openssl':
      if (!which('openssl')) why = 'openssl is not installed (apt-get install openssl)';
      break;
    case 'dig':
      if (!which('dig')) why = 'dig is not installed (apt-get install dnsutils)';
      break;
    case 'bind':
      if (!existsSync('/usr/sbin/named') || !which('tsig-keygen') || !which('nsupdate') || !which('dig'))
        why = 'BIND 9 is not installed (apt-get install bind9 bind9-dnsutils)';
      break;
    case 'knot':
      if (!existsSync('/usr/sbin/knotd') || !which('knsupdate') || !which('tsig-keygen'))
        why = 'Knot is not installed (apt-get install knot knot-dnsutils; tsig-keygen from bind9)';
      break;
    case 'nft':
      if (!which('nft')) why = 'nft is not installed (apt-get install nftables)';
      break;
  }
  cache.set(req, why);
  return why;
}

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Call at the top of a test: returns true when every requirement is met. Otherwise,
 * in CI it throws (the test fails); elsewhere it marks the test skipped with the reason
 * and returns false.
 */
export function requires(t: TestContext, ...reqs: Requirement[]): boolean {
  const reasons = reqs.map(missing).filter((r): r is string => r !== null);
  if (reasons.length === 0) return true;
  const msg = `prerequisite missing: ${reasons.join('; ')}`;
  if (inCI) throw new Error(`${msg} — .ci/run must install it`);
  t.skip(msg);
  return false;
}

/** For describe()-level gating: the skip reason, or false. Throws in CI. */
export function skipUnless(...reqs: Requirement[]): string | false {
  const reasons = reqs.map(missing).filter((r): r is string => r !== null);
  if (reasons.length === 0) return false;
  const msg = `prerequisite missing: ${reasons.join('; ')}`;
  if (inCI) throw new Error(`${msg} — .ci/run must install it`);
  return msg;
}
