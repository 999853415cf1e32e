/**
 * Test fixture: advertises with the library API and takes commands on stdin, so tests can
 * drive TXT updates. Usage: node advertise-fixture.js <name> <type> <port> [k=v ...]
 * stdin: `update k=v ...` (replaces the TXT record), `stop`. Prints JSON lines.
 */
import { createInterface } from 'node:readline';
import { advertise } from '../../../src/dnssd/index.js';
import type { TxtInput } from '../../../src/dnssd/index.js';

function txtOf(args: readonly string[]): TxtInput {
  const txt: TxtInput = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq < 0) txt[a] = true;
    else txt[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return txt;
}

const [name, type, port, ...rest] = process.argv.slice(2);
const ad = advertise({ name: name ?? 'Fixture', type: type ?? '_fixture._tcp', port: Number(port ?? 1), txt: txtOf(rest), ...(process.env.PL_HOST ? { host: process.env.PL_HOST } : {}) });
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
ad.on('registered', (n) => out({ event: 'registered', name: n }));
ad.on('renamed', (c) => out({ event: 'renamed', ...c }));
const stop = async (): Promise<void> => {
  await ad.stop();
  out({ event: 'stopped' });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...args] = line.trim().split(/\s+/);
  if (cmd === 'update') {
    ad.update(txtOf(args));
    out({ event: 'updated' });
  } else if (cmd === 'stop') void stop();
});
