/**
 * Run inside a lab namespace: on the line `go` on stdin, opens a TCP connection to every
 * address given (`host` or `fe80::…%eth0`) on a port nobody listens on, all at once, and prints
 * one JSON line: how many answered (a RST — ECONNREFUSED — or a connect) and which did not
 * within the deadline. A host that answers nothing is one whose SYN never left or whose RST
 * never came back: with every namespace of the machine sharing one neighbour table, that is
 * what a full table does (netns.ts, ensureNeighbourCapacity).
 *
 *   node connect-sweep.js <port> <deadlineMs> <address>...
 */
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';

const [portArg, deadlineArg, ...targets] = process.argv.slice(2);
const port = Number(portArg);
const deadline = Number(deadlineArg);

function out(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function probe(target: string): Promise<{ target: string; answered: boolean; code?: string }> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (answered: boolean, code?: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ target, answered, ...(code !== undefined ? { code } : {}) });
    };
    const timer = setTimeout(() => done(false, 'deadline'), deadline);
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED', err.code));
    s.connect({ port, host: target });
  });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() !== 'go') return;
  rl.close();
  void Promise.all(targets.map(probe)).then((results) => {
    const missed = results.filter((r) => !r.answered);
    out({ ev: 'swept', answered: results.length - missed.length, missed: missed.map((r) => `${r.target} (${r.code ?? '?'})`) });
    process.exit(0);
  });
});
out({ ev: 'ready' });
