/**
 * What the mDNS traffic of an N-peer mesh is made of: the lab's sniffer on the bridge, every
 * packet classified (query: question types, QU, known answers, TC, probe; response: answer
 * types, goodbye, additionals), counted over start-up (start of every peer → full mesh) and
 * over consecutive steady-state windows after the mesh.
 *
 *   node dist/bench/scale/mdns-mix.js [--save sniffed.txt] [--n 64] [--mesh 180] [--windows 3] [--window 60] [--top 14]
 *
 * Packets are counted once per family (an IPv4 and an IPv6 copy are two packets), as the
 * mesh run's counter does; "per peer per minute" is the total ÷ N.
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { ScaleLab } from '../../test/harness/scale-lab.js';

interface Sniffed {
  ms: number;
  kind: string;
  source: string;
}

/** The sniffer's space-separated `name/type…` items; instance names may contain spaces. */
function tokens(list: string): string[] {
  const out: string[] = [];
  let acc = '';
  for (const t of list.split(' ')) {
    acc = acc ? `${acc} ${t}` : t;
    if (t.includes('/')) {
      out.push(acc);
      acc = '';
    }
  }
  return out;
}

/** One sniffer line → its class (see mdns-sniffer.ts for the line format). */
export function classify(line: string): Sniffed | undefined {
  const m = /^(\d+) (\S+) (Q|R) id=\S+( TC)? q=\[([^\]]*)\] rr=\[([^\]]*)\]/.exec(line);
  if (!m) return undefined;
  const src = m[2] as string;
  const fam = src.split(':').length > 2 ? 'v6' : 'v4';
  const qs = tokens(m[5] as string);
  const rrs = tokens(m[6] as string);
  const type = (x: string): string => x.split('/')[1] ?? '?';
  const tc = m[4] ? ' TC' : '';
  let kind: string;
  if (m[3] === 'Q') {
    const ns = rrs.filter((x) => x.startsWith('ns:')).length;
    const ka = rrs.filter((x) => x.startsWith('an:')).length;
    const qtypes = [...new Set(qs.map((x) => type(x) + (x.endsWith('/QU') ? '(QU)' : '')))].sort().join('+');
    const bucket = ka === 0 ? '0' : ka < 10 ? '1-9' : ka < 50 ? '10-49' : '50+';
    if (ns > 0) kind = `Q probe ${qtypes}`;
    else if (qs.length === 0) kind = `Q continuation ka=${bucket}${tc}`;
    else kind = `Q ${qtypes} ka=${bucket}${tc}${qs.length > 1 ? ` (${qs.length} questions)` : ''}`;
  } else {
    const an = rrs.filter((x) => x.startsWith('an:'));
    const ar = rrs.filter((x) => x.startsWith('ar:'));
    const types = [...new Set(an.map(type))].sort().join('+');
    const atypes = [...new Set(ar.map(type))].sort().join('+');
    const gb = an.some((x) => x.split('/')[2] === '0') ? ' goodbye' : '';
    kind = `R ${types}${atypes ? ` ar=${atypes}` : ''}${gb} (${an.length} an)`;
  }
  return { ms: Number(m[1]), kind: `${fam} ${kind}`, source: src.replace(/:\d+$/, '') };
}

function table(title: string, pkts: readonly Sniffed[], n: number, minutes: number, top: number): void {
  const kinds = new Map<string, number>();
  for (const p of pkts) kinds.set(p.kind, (kinds.get(p.kind) ?? 0) + 1);
  const rate = minutes > 0 ? ` = ${(pkts.length / n / minutes).toFixed(2)} per peer per minute` : '';
  console.log(`\n${title}: ${pkts.length} packets${rate}`);
  for (const [k, v] of [...kinds].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${String(v).padStart(8)}  ${k}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { help: { type: 'boolean', short: 'h' }, save: { type: 'string' }, n: { type: 'string', default: '64' }, mesh: { type: 'string', default: '180' }, windows: { type: 'string', default: '3' }, window: { type: 'string', default: '60' }, top: { type: 'string', default: '14' } },
  });
  if (values.help) {
    console.log(`usage: node dist/bench/scale/mdns-mix.js [--n 64] [--mesh 180] [--windows 3] [--window 60] [--top 14] [--save sniffed.txt]

What an N-peer mesh's mDNS traffic is made of: a sniffer on the lab's bridge classifies every
packet (question and answer types, QU, known answers, TC, probes, goodbyes) over start-up (until
the full mesh, at most --mesh seconds) and over --windows steady windows of --window seconds.
  --n        peers (namespaces on one bridge; root)      --top    classes printed per window
  --save     also write every sniffed packet to a file    -h, --help  this text`);
    return;
  }
  const n = Number(values.n);
  const win = Number(values.window);
  const top = Number(values.top);
  const lab = await ScaleLab.create({ hosts: n, tag: 'mx', countMdns: false });
  const load0 = loadavg()[0] as number;
  try {
    const sn = await lab.lab.sniffMdns();
    const snT0 = Date.now();
    const peers = await lab.startAll();
    const lastReady = Math.max(...peers.map((p) => p.readyAt));
    console.log(`N = ${n}: all ready ${lastReady - snT0} ms after start`);
    const mesh = await lab.waitMesh(Number(values.mesh) * 1000, 1000);
    const meshMs = mesh.at - snT0;
    console.log(`mesh ${mesh.ok ? 'full' : 'NOT full'} ${mesh.at - lastReady} ms after the last ready (missing ${mesh.check.missing}, duplicates ${mesh.check.duplicates})`);
    const cuts = [meshMs];
    for (let i = 0; i < Number(values.windows); i++) {
      await new Promise((r) => setTimeout(r, win * 1000));
      cuts.push(Date.now() - snT0);
    }
    if (values.save) writeFileSync(values.save, `${sn.stdoutLines.join('\n')}\n# mesh at ${meshMs} ms, cuts ${cuts.join(' ')}\n`);
    const all = sn.stdoutLines.map(classify).filter((x): x is Sniffed => x !== undefined);
    table(`start-up (start → mesh, ${(meshMs / 1000).toFixed(0)} s)`, all.filter((p) => p.ms < meshMs), n, 0, top);
    for (let i = 1; i < cuts.length; i++) {
      const from = cuts[i - 1] as number;
      const to = cuts[i] as number;
      const w = all.filter((p) => p.ms >= from && p.ms < to);
      table(`steady window ${i} (mesh +${((from - meshMs) / 1000).toFixed(0)}–${((to - meshMs) / 1000).toFixed(0)} s)`, w, n, (to - from) / 60_000, top);
      const bySource = new Map<string, number>();
      for (const p of w) bySource.set(p.source, (bySource.get(p.source) ?? 0) + 1);
      const counts = [...bySource.values()].sort((a, b) => a - b);
      console.log(`  senders ${counts.length}, packets per sender: min ${counts[0] ?? 0}, median ${counts[counts.length >> 1] ?? 0}, max ${counts[counts.length - 1] ?? 0}`);
    }
    console.log(`\nload average ${load0.toFixed(1)} → ${(loadavg()[0] as number).toFixed(1)}`);
  } finally {
    await lab.teardown();
  }
}

if (process.argv[1]?.endsWith('mdns-mix.js')) await main();
