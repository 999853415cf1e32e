/**
 * Helpers for session integration tests: start session-peers.js fixtures inside lab
 * namespaces and talk to them with JSON lines.
 */
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../harness/netns.js';
import { parseJsonLine, waitForLine, type TrackedProcess } from '../../harness/proc.js';
import type { FixtureConfig } from './session-peers.js';

export const FIXTURE = fileURLToPath(new URL('./session-peers.js', import.meta.url));

export type Ev = Record<string, unknown> & { ev: string; t: number };

export function startPeers(lab: Lab, where: number | string, cfg: FixtureConfig, label?: string): TrackedProcess {
  return lab.spawnNode(where, FIXTURE, [JSON.stringify(cfg)], { stdin: true, label: label ?? `${String(where)}: ${cfg.names.join(',')}` });
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

export interface Status {
  name: string;
  id: string;
  connected: string[];
  unique: number;
  stats: { controlConnections: number; activeConnections: number; handshakes: number; streams: number };
}

/** Asks a fixture for the status of all its sessions. */
export async function status(p: TrackedProcess, count: number, timeoutMs = 10_000): Promise<Status[]> {
  const since = p.stdoutLines.length;
  p.writeLine(JSON.stringify({ cmd: 'status' }));
  const got: Status[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count) {
    await waitEv(p, (e) => e.ev === 'status', Math.max(1, deadline - Date.now()), 'status', since);
    got.length = 0;
    for (const e of events(p, since)) if (e.ev === 'status') got.push(e as unknown as Status);
    if (got.length < count) await new Promise((r) => setTimeout(r, 20));
  }
  return got;
}

/** Polls until `check` passes on the combined status of every fixture, or throws its last failure. */
export async function eventually(fixtures: Array<{ p: TrackedProcess; n: number }>, check: (all: Status[]) => string | undefined, timeoutMs: number): Promise<Status[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = (await Promise.all(fixtures.map((f) => status(f.p, f.n)))).flat();
    const problem = check(all);
    if (!problem) return all;
    if (Date.now() > deadline) throw new Error(`not settled after ${timeoutMs} ms: ${problem}\n${fixtures.map((f) => f.p.tail()).join('\n')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every session connected to exactly the others, once, with no extra control connections. */
export function fullMesh(expectedIds: string[]): (all: Status[]) => string | undefined {
  return (all) => {
    for (const s of all) {
      const want = expectedIds.filter((id) => id !== s.id).sort();
      const have = [...s.connected].sort();
      if (s.unique !== s.connected.length) return `${s.name} lists a peer twice`;
      if (have.join() !== want.join()) return `${s.name} has ${have.length}/${want.length} peers`;
      if (s.stats.controlConnections !== want.length) return `${s.name} has ${s.stats.controlConnections} control connections for ${want.length} peers`;
    }
    return undefined;
  };
}
