/**
 * A star session's mDNS in fake time (issue 17 "Scale"): N engines on one FakeLink, each
 * advertising one `_scale._tcp` instance and browsing that type, hosts with A + AAAA (both
 * families, IPv6 packets from the IPv6 address). Counts every packet sent on the link per
 * minute: start-up (the first minutes) and a steady window that covers several of the
 * refresh waves of the 120 s records (RFC 6762 §5.2: 80-95 % of the TTL, every ~97 s).
 * Deterministic: the FakeClock's random() is seeded.
 */
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import type { ServiceBrowser } from '../../../src/dnssd/browser.js';
import { FakeLink, type Sent } from './fake-link.js';

export interface SimOptions {
  n: number;
  /** Fake minutes to run (default 10). */
  minutes?: number;
  /** Start of the steady window in minutes (default 4). */
  steadyFrom?: number;
  /** Per-receiver loss: the fraction of packets each receiver drops (default 0). */
  loss?: number;
  /** Per-receiver lag: each packet reaches each host 0 to `lag` ms late (uniform; default 0). */
  lag?: number;
  /** Every host starts with this name (a room of cloned machines, as in the scale lab) instead of h0, h1, … */
  sameHost?: string;
  /** Instance name of peer i (default `peer i`); long names make browsers' known-answer lists span packets (TC). */
  name?: (i: number) => string;
  /** Peers start one after another over this many ms (engine, advertisement and browse; default 0: all at once). */
  spreadMs?: number;
}

export interface SimResult {
  n: number;
  /** Packets on the link per minute (index = minute). */
  perMinute: number[];
  /**
   * Packets received per minute, summed over the hosts (a multicast packet is read by every
   * host, a unicast one by its addressee): what the link costs the peers' CPUs.
   */
  receivedPerMinute: number[];
  /** Packets per peer per minute, minute 0 to steadyFrom. */
  startupPerPeerPerMinute: number;
  /** Packets per peer per minute, steadyFrom to the end. */
  steadyPerPeerPerMinute: number;
  /** Instances every browser had resolved at the end (N × (N − 1) when complete). */
  resolved: number;
  /** Resolved instances whose addresses were not the owner's (wrong host). */
  wrongAddresses: number;
  /** What the steady window's packets were (by shape). */
  steadyMix: Map<string, number>;
  log: Sent[];
  engines: Mdns[];
  browsers: ServiceBrowser[];
  link: FakeLink;
  clock: FakeClock;
}

/** A packet's shape: `Q A,AAAA,SRV ka3` or `R SRV,A,AAAA +2`, with its family. */
export function shape(s: Sent): string {
  const p = s.packet;
  const fam = s.to ? 'uni' : s.family === 'IPv6' ? 'v6' : 'v4';
  if (!p.response) {
    const qs = [...new Set(p.questions.map((q) => String(q.qtype)))].join(',');
    return `Q ${qs}${p.authorities.length > 0 ? ' probe' : ''}${p.truncated ? ' TC' : ''} ${fam}`;
  }
  const as = [...new Set(p.answers.map((r) => r.type))].join(',');
  const gb = p.answers.some((r) => r.ttl === 0) ? ' goodbye' : '';
  return `R ${as}${p.additionals.length > 0 ? ' +add' : ''}${gb} ${fam}`;
}

export async function simulate(opts: SimOptions): Promise<SimResult> {
  const { n } = opts;
  const minutes = opts.minutes ?? 10;
  const steadyFrom = opts.steadyFrom ?? 4;
  const clock = new FakeClock();
  const link = new FakeLink(clock, { v6Sources: true });
  if (opts.loss !== undefined && opts.loss > 0) {
    const loss = opts.loss;
    link.dropAt = () => clock.random() < loss;
  }
  if (opts.lag !== undefined && opts.lag > 0) {
    const lag = opts.lag;
    link.lag = () => clock.random() * lag;
  }
  const t0 = clock.now();
  const hosts = Array.from({ length: n }, (_, i) => link.host(i + 1, ['IPv4', 'IPv6']));
  const engines: Mdns[] = new Array<Mdns>(n);
  const browsers: ServiceBrowser[] = new Array<ServiceBrowser>(n);
  const start = async (i: number): Promise<void> => {
    const e = new Mdns({ network: hosts[i] as (typeof hosts)[number], clock, host: opts.sameHost ?? `h${i}` });
    engines[i] = e;
    await e.whenReady();
    e.advertise({ name: opts.name?.(i) ?? `peer ${i}`, type: '_scale._tcp', port: 1000 + i });
    browsers[i] = e.browse({ type: '_scale._tcp' });
  };
  const spread = opts.spreadMs ?? 0;
  if (spread > 0) {
    for (let i = 0; i < n; i++) {
      await start(i);
      await Promise.resolve();
      clock.advance(spread / n);
    }
  } else await Promise.all(hosts.map((_, i) => start(i)));
  await Promise.resolve();
  for (let t = clock.now() - t0; t < minutes * 60_000; t += 1000) clock.advance(1000);
  const perMinute = Array.from({ length: minutes }, () => 0);
  const receivedPerMinute = Array.from({ length: minutes }, () => 0);
  const steadyMix = new Map<string, number>();
  for (const s of link.log) {
    const m = Math.floor((s.at - t0) / 60_000);
    if (m < minutes) perMinute[m] = (perMinute[m] ?? 0) + 1;
    if (m < minutes) receivedPerMinute[m] = (receivedPerMinute[m] ?? 0) + (s.to ? 1 : n);
    if (m >= steadyFrom && m < minutes) steadyMix.set(shape(s), (steadyMix.get(shape(s)) ?? 0) + 1);
  }
  const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
  let resolved = 0;
  let wrongAddresses = 0;
  browsers.forEach((b) => {
    for (const s of b.services) {
      resolved++;
      const owner = Number(/peer (\d+)/.exec(s.name)?.[1]);
      const want = [`10.9.0.${owner + 1}`, `fe80::${owner + 1}%eth0`];
      if (s.addresses.join(',') !== want.join(',')) wrongAddresses++;
    }
  });
  return {
    n,
    perMinute,
    receivedPerMinute,
    startupPerPeerPerMinute: sum(perMinute.slice(0, steadyFrom)) / n / steadyFrom,
    steadyPerPeerPerMinute: sum(perMinute.slice(steadyFrom)) / n / (minutes - steadyFrom),
    resolved,
    wrongAddresses,
    steadyMix,
    log: link.log,
    engines,
    browsers,
    link,
    clock,
  };
}
