/**
 * Helpers for the fault-lab session tests: fault-peer.js fixtures in lab hosts.
 */
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../harness/netns.js';
import type { TrackedProcess } from '../../harness/proc.js';
// The fixtures' JSON-line events are read the same way as session-peers.js's.
import { events, waitEv, type Ev } from '../session/peers.js';
import type { FaultPeerConfig } from './fault-peer.js';

export { events, waitEv, type Ev };

const FIXTURE = fileURLToPath(new URL('./fault-peer.js', import.meta.url));

export interface Rx {
  count: number;
  ordered: boolean;
  first: number;
  last: number;
}

export function startFaultPeer(lab: Lab, host: number, cfg: FaultPeerConfig): TrackedProcess {
  return lab.spawnNode(host, FIXTURE, [JSON.stringify(cfg)], { stdin: true, label: `h${host}: ${cfg.name}` });
}

export function command(p: TrackedProcess, c: Record<string, unknown>): void {
  p.writeLine(JSON.stringify(c));
}

/** What `p` received from `from`, polled until `count` messages arrived (or the deadline). */
export async function receivedFrom(p: TrackedProcess, from: string, count: number, timeoutMs: number): Promise<Rx | undefined> {
  const deadline = Date.now() + timeoutMs;
  let r: Rx | undefined;
  for (;;) {
    const since = p.stdoutLines.length;
    command(p, { cmd: 'recv' });
    const e = await waitEv(p, (x) => x.ev === 'recv', 10_000, 'recv', since);
    r = (e.from as Record<string, Rx>)[from];
    if ((r?.count ?? 0) >= count || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Every message exactly once, in order, none missing: `count` strictly increasing sequence numbers from first to last. */
export function exactlyOnceInOrder(r: Rx | undefined, count: number): string | undefined {
  if (!r) return 'nothing received';
  if (r.count !== count) return `${r.count}/${count} received`;
  if (!r.ordered) return 'out of order or duplicated';
  if (r.last - r.first + 1 !== count) return `sequence ${r.first}..${r.last} for ${count} messages`;
  return undefined;
}
