/** js-libp2p for the session benchmark: bench/libp2p/peer.mjs, run last and alone. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Libp2pResult {
  messagesPerSec: number;
  bulkMiBps: number;
  rttP50Us: number;
  connectMs: number;
}

/**
 * Runs bench/libp2p/peer.mjs, in its own process group so that a run that times out is
 * ended with every process it forked. A string says why there is no result.
 */
export function runLibp2p(args: string[], timeoutMs: number): Promise<Libp2pResult | string> {
  const dir = fileURLToPath(new URL('../../../bench/libp2p/', import.meta.url));
  if (!existsSync(`${dir}node_modules`)) return Promise.resolve('js-libp2p: not installed, run npm run bench:libp2p:install');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${dir}peer.mjs`, ...args], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
      resolve(`js-libp2p: no result within ${timeoutMs / 1000} s (try smaller --libp2p-messages / --libp2p-bulk-mib)`);
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      resolve(line ? (JSON.parse(line) as Libp2pResult) : `js-libp2p: failed (exit ${String(code)})`);
    });
  });
}
