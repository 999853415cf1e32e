/**
 * The JSON-lines protocol of the peer fixtures (fault-peer.ts, link-quality-peer.ts,
 * scale-peer.ts, session-peers.ts): events out on stdout, one JSON object a line stamped with
 * `t` (ms since the epoch); commands in on stdin, one JSON object a line.
 */
import { createInterface } from 'node:readline';
import type { PeerSession } from '../../src/session/index.js';

/** Lines waiting for the next flush (batchOutput), else undefined: every line is written at once. */
let pending: string[] | undefined;
let flushing = false;

function flush(): void {
  flushing = false;
  if (!pending || pending.length === 0) return;
  process.stdout.write(pending.join(''));
  pending.length = 0;
}

/**
 * Writes event lines once per turn of the loop instead of one write each (a pipe's stdout is
 * written synchronously: 100 sessions' lines cost the scale lab's processes 8 % of their CPU as
 * one syscall each). Lines keep their `t` from when they were made; what is pending is written
 * when the process exits.
 */
export function batchOutput(): void {
  if (pending) return;
  pending = [];
  process.on('exit', flush);
}

/** Writes one event line. */
export const out = (o: Record<string, unknown>): void => {
  const line = JSON.stringify({ t: Date.now(), ...o }) + '\n';
  if (!pending) {
    process.stdout.write(line);
    return;
  }
  pending.push(line);
  if (!flushing) {
    flushing = true;
    setImmediate(flush);
  }
};

/** Hands every stdin line that parses as JSON to `onCommand`; a line that does not is ignored, a command that throws is reported as `{ev:'error'}`. */
export function readCommands<C>(onCommand: (c: C) => Promise<void>): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    let c: C;
    try {
      c = JSON.parse(line) as C;
    } catch {
      return;
    }
    onCommand(c).catch((err: unknown) => out({ ev: 'error', message: err instanceof Error ? err.message : String(err) }));
  });
}

/** Starts `session`, then reports `{ev:'ready', id, port}`; a failed start is reported as `{ev:'fatal'}` and ends the process. */
export function startAndReport(session: PeerSession): void {
  session
    .start()
    .then(() => out({ ev: 'ready', id: session.peerId.id, port: session.listenPort }))
    .catch((err: unknown) => {
      out({ ev: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      process.exit(1);
    });
}
