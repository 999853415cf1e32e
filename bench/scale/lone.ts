/**
 * RSS of a lone session: imports the public API (what an app imports), starts one PSK
 * session on `lo` (browsing and advertising), waits, and prints memory after a full GC.
 *   node dist/bench/scale/lone.js [--import-only]
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;
const mem = (): string => {
  gc();
  const m = process.memoryUsage();
  return `rss ${(m.rss / MiB).toFixed(1)} MiB, heap ${(m.heapUsed / MiB).toFixed(1)} MiB, external ${(m.external / MiB).toFixed(1)} MiB`;
};

const before = mem();
const { PeerSession } = await import('../../src/index.js');
const imported = mem();
if (process.argv.includes('--import-only')) {
  console.log(JSON.stringify({ bare: before, imported }));
  process.exit(0);
}
const s = new PeerSession({ serviceType: 'lone', security: { mode: 'psk', key: '00112233445566778899aabbccddeeff' }, interfaces: ['lo'] });
await s.start();
await new Promise((r) => setTimeout(r, 5000));
const started = mem();
console.log(JSON.stringify({ bare: before, imported, started }));
await s.close();
process.exit(0);
