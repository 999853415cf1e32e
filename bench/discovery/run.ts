/**
 * Discovery latency: time from advertise() on one namespace host to the resolved `added`
 * at a browser on another, for peerlink, Avahi and python-zeroconf as publishers and as
 * browsers (every publisher is seen by all three browsers at once), median of N runs.
 *
 *   npm run bench:discovery -- [--runs N] [--json]
 *
 * Needs root (network namespaces), avahi-daemon + avahi-utils + python3-dbus, and
 * python3-zeroconf. Nothing leaves the lab's namespaces.
 *
 * Each publisher is a long-lived engine (peerlink Mdns, avahi-daemon via D-Bus, a Zeroconf
 * instance) and reports the wall-clock time just before it is asked to advertise; browsers
 * report when an instance is resolved (peerlink, zeroconf: their own clock; avahi-browse: when
 * its `=` line reaches this process, a few ms late at most). Includes each implementation's
 * probing (RFC 6762 §8.1: ~750 ms for three probes 250 ms apart; zeroconf probes faster).
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createLab, type Lab } from '../../test/harness/netns.js';
import { startAvahi, parseAvahiBrowseLine, type Avahi } from '../../test/harness/avahi.js';
import { killAllTracked, waitForJson, type TrackedProcess } from '../../test/harness/proc.js';
import { missing, type Requirement } from '../../test/harness/prereq.js';
import { zeroconfBrowse, zeroconfReady } from '../../test/harness/zeroconf.js';
import { SYSTEM_PYTHON } from '../../test/harness/paths.js';

type Impl = 'peerlink' | 'Avahi' | 'python-zeroconf';
const IMPLS: Impl[] = ['peerlink', 'Avahi', 'python-zeroconf'];
const TYPE = '_plbench._tcp';
const WAIT_MS = 15_000;

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
// the .py drivers stay in the source tree; this file runs from dist/bench/discovery/
const pySource = (f: string): string => fileURLToPath(new URL(`../../../bench/discovery/${f}`, import.meta.url));
const now = (): number => performance.timeOrigin + performance.now();

interface Sample {
  publisher: Impl;
  browser: Impl;
  run: number;
  ms: number | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' }, json: { type: 'boolean' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write('bench:discovery: --runs expects a positive integer\n');
    return 2;
  }
  const needs: Requirement[] = ['netns', 'avahi', 'zeroconf', 'python-dbus'];
  const why = needs.map(missing).filter(Boolean);
  if (why.length > 0) {
    process.stderr.write(`bench:discovery: cannot run: ${why.join('; ')}\n`);
    return 2;
  }

  let lab: Lab | undefined;
  const avahis: Avahi[] = [];
  try {
    lab = await createLab({ hosts: 2, tag: 'bdisc' });
    const [pubHost, browseHost] = [lab.host(1), lab.host(2)];
    const avahiPub = await startAvahi(lab, 1, { hostName: 'avahi-pub' });
    const avahiBrowse = await startAvahi(lab, 2, { hostName: 'avahi-browse' });
    avahis.push(avahiPub, avahiBrowse);

    // browsers on h2
    const oursB = lab.spawnNode(browseHost, here('./ours-browser.js'), [TYPE]);
    const zcB = zeroconfBrowse(lab, browseHost, TYPE);
    const avB = avahiBrowse.browse(TYPE);
    await waitForJson(oursB, (e) => e.event === 'ready', 60_000);
    await zeroconfReady(zcB, 60_000);

    // publishers on h1
    const pubs: Record<Impl, TrackedProcess> = {
      peerlink: lab.spawn(pubHost, process.execPath, [here('./ours-publisher.js'), 'bench-ours'], { stdin: true }),
      Avahi: lab.spawn(pubHost, SYSTEM_PYTHON, [pySource('avahi_publisher.py')], { stdin: true, env: { ...avahiPub.env, PYTHONUNBUFFERED: '1' } }),
      'python-zeroconf': lab.spawn(pubHost, SYSTEM_PYTHON, [pySource('zc_publisher.py'), 'bench-zc', pubHost.ipv4 ?? ''], { stdin: true, env: { ...process.env, PYTHONUNBUFFERED: '1' } }),
    };
    for (const p of Object.values(pubs)) await waitForJson(p, (e) => e.event === 'ready', 60_000);

    // when each browser resolved each name
    const seen: Record<Impl, Map<string, number>> = { peerlink: new Map(), Avahi: new Map(), 'python-zeroconf': new Map() };
    oursB.on('line', (l: string) => {
      const e = JSON.parse(l) as { event: string; name: string; t: number };
      if (e.event === 'added' && !seen.peerlink.has(e.name)) seen.peerlink.set(e.name, e.t);
    });
    zcB.on('line', (l: string) => {
      const e = JSON.parse(l) as { event: string; name?: string; t: number };
      if (e.event === 'added' && e.name && !seen['python-zeroconf'].has(e.name)) seen['python-zeroconf'].set(e.name, e.t);
    });
    avB.on('line', (l: string) => {
      const t = now();
      const e = parseAvahiBrowseLine(l);
      if (e?.kind === '=' && !seen.Avahi.has(e.name)) seen.Avahi.set(e.name, t);
    });

    const samples: Sample[] = [];
    for (let run = 1; run <= runs; run++) {
      for (const publisher of IMPLS) {
        const name = `bench-${publisher.replace(/[^a-z]/gi, '')}-${run}`;
        const pub = pubs[publisher];
        const mark = pub.stdoutLines.length;
        pub.writeLine(`go ${name} ${TYPE} ${4000 + run}`);
        const start = await waitForJson<{ event: string; name: string; t: number }>(pub, (e) => e.event === 'start' && e.name === name, 30_000, { since: mark });
        const deadline = Date.now() + WAIT_MS;
        while (Date.now() < deadline && IMPLS.some((b) => !seen[b].has(name))) await new Promise((r) => setTimeout(r, 20));
        for (const browser of IMPLS) {
          const t = seen[browser].get(name);
          samples.push({ publisher, browser, run, ms: t === undefined ? null : t - start.t });
        }
        pub.writeLine(`stop ${name}`);
        // let the goodbyes settle so runs do not overlap
        await new Promise((r) => setTimeout(r, 1500));
        process.stderr.write('.');
      }
    }
    process.stderr.write('\n');
    if (values.json) for (const s of samples) process.stdout.write(`${JSON.stringify(s)}\n`);
    printTable(samples, runs);
    return 0;
  } finally {
    await killAllTracked();
    for (const a of avahis) await a.stop().catch(() => undefined);
    await lab?.teardown();
  }
}

function printTable(samples: Sample[], runs: number): void {
  const cell = (pub: Impl, br: Impl): string => {
    const xs = samples.filter((s) => s.publisher === pub && s.browser === br);
    const ok = xs.map((s) => s.ms).filter((m): m is number => m !== null);
    if (ok.length === 0) return 'not seen';
    const miss = xs.length - ok.length;
    return `${median(ok).toFixed(0)} (${Math.min(...ok).toFixed(0)}–${Math.max(...ok).toFixed(0)})${miss ? ` ${miss} missed` : ''}`;
  };
  const head = ['publisher \\ browser', ...IMPLS];
  const rows = IMPLS.map((p) => [p, ...IMPLS.map((b) => cell(p, b))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(`\nDiscovery latency, advertise() on host 1 → resolved "added" on host 2 (network namespaces, one bridge)\n`);
  process.stdout.write(`median ms (min–max) of ${runs} runs\n\n`);
  process.stdout.write(`${line(head)}\n| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |\n`);
  for (const r of rows) process.stdout.write(`${line(r)}\n`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:discovery failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
