/**
 * Helpers for the fault-lab session tests: fault-peer.js fixtures in lab hosts.
 */
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../harness/netns.js';
import { parseJsonLine, waitForLine, type TrackedProcess } from '../../harness/proc.js';
import type { FaultPeerConfig } from './fault-peer.js';

const FIXTURE = fileURLToPath(new URL('./fault-peer.js', import.meta.url));

export type Ev = Record<string, unknown> & { ev: string; t: number };
export interface Rx {
  count: number;
  ordered: boolean;
  first: number;
  last: number;
}

export function startFaultPeer(lab: Lab, host: number, cfg: FaultPeerConfig): TrackedProcess {
  return lab.spawnNode(host, FIXTURE, [JSON.stringify(cfg)], { stdin: true, label: `h${host}: ${cfg.name}` });
}

export function events(p: TrackedProcess, since = 0): Ev[] {
  const out: Ev[] = [];
  for (let i = since; i < p.stdoutLines.length; i++) {
    const v = parseJsonLine<Ev>(p.stdoutLines[i] as string);
    if (v) out.push(v);
  }
  return out;
}

export async function waitEv(p: TrackedProcess, pred: (e: Ev) => boolean, timeoutMs: number, what: string, since = 0): Promise<Ev> {
  const line = await waitForLine(
    p,
    (l) => {
      const v = parseJsonLine<Ev>(l);
      return v !== undefined && pred(v);
    },
    timeoutMs,
    { what, since },
  );
  return parseJsonLine<Ev>(line) as Ev;
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
