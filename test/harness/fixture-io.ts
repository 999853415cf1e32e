/**
 * The JSON-lines protocol of the peer fixtures (fault-peer.ts, link-quality-peer.ts,
 * scale-peer.ts, session-peers.ts): events out on stdout, one JSON object a line stamped with
 * `t` (ms since the epoch); commands in on stdin, one JSON object a line.
 */
import { createInterface } from 'node:readline';
import type { PeerSession } from '../../src/session/index.js';

/** Writes one event line. */
export const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
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
