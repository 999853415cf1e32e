/**
 * The mDNS packets of an N-peer star session in fake time (no sockets, no lock needed):
 * N engines on one in-memory link (test/unit/dnssd/steady-sim.ts), each advertising one
 * instance and browsing its type. Prints packets per peer per minute for each minute, for
 * start-up (minutes 0 to --from) and for the steady window (--from to --minutes, which covers
 * several refresh waves of the 120 s records), and what the steady packets were.
 *
 *   node dist/bench/scale/steady-sim.js [--n 64] [--minutes 10] [--from 4] [--loss 0] [--lag 0] [--same-host vm] [--long-names] [--spread 0] [--top 12]
 *
 * --same-host vm: every host starts named vm (host-name contests, as in the lab).
 * --long-names: 40-character instance names (browsers' known-answer lists span packets, TC).
 * --lag L: each packet reaches each host 0-L ms late (a loaded host reading its socket late).
 * --spread S: the peers start one after another over S seconds (default 0: all at once).
 * The counts are deterministic (seeded fake clock); the issue 17 target is steady ≤ 2.
 */
import { parseArgs } from 'node:util';
import { simulate } from '../../test/unit/dnssd/steady-sim.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '64' },
    minutes: { type: 'string', default: '10' },
    from: { type: 'string', default: '4' },
    loss: { type: 'string', default: '0' },
    lag: { type: 'string', default: '0' },
    'same-host': { type: 'string' },
    'long-names': { type: 'boolean' },
    spread: { type: 'string', default: '0' },
    top: { type: 'string', default: '12' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: node dist/bench/scale/steady-sim.js [--n 64] [--minutes 10] [--from 4] [--loss 0] [--lag 0] [--same-host vm] [--long-names] [--spread 0] [--top 12]');
  process.exit(0);
}
const n = Number(values.n);
const r = await simulate({ n, minutes: Number(values.minutes), steadyFrom: Number(values.from), loss: Number(values.loss), lag: Number(values.lag), ...(values['same-host'] ? { sameHost: values['same-host'] } : {}), ...(values['long-names'] ? { name: (i: number) => `peerlink peer ${i} on a lab host with a long name` } : {}), spreadMs: Number(values.spread) * 1000 });
console.log(`N=${n}: packets per peer per minute, by minute: ${r.perMinute.map((x) => (x / n).toFixed(1)).join(' ')}`);
console.log(`packets received per peer per minute (a multicast is read by every host), by minute: ${r.receivedPerMinute.map((x) => (x / n).toFixed(0)).join(' ')}`);
console.log(`start-up (0-${values.from} min) ${r.startupPerPeerPerMinute.toFixed(2)}; steady (${values.from}-${values.minutes} min) ${r.steadyPerPeerPerMinute.toFixed(2)} per peer per minute`);
console.log(`resolved ${r.resolved} of ${n * n} (own included), wrong addresses ${r.wrongAddresses}`);
const mix = [...r.steadyMix].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
for (const [k, v] of mix) console.log(`  ${String(v).padStart(7)}  ${k}`);
await Promise.all(r.engines.map((e) => e.close()));
