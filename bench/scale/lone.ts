/**
 * RSS of a lone session: imports the public API (what an app imports), starts one PSK
 * session on `lo` (browsing and advertising), waits 15 s, and prints memory after a full GC.
 * The breakdown per stage and per Node line is bench/scale/memory.ts (docs/memory.md).
 *   node dist/bench/scale/lone.js [--import-only]
 */
import { importLibrary } from './entry.js';
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
const { PeerSession } = await importLibrary();
const imported = mem();
if (process.argv.includes('--import-only')) {
  console.log(JSON.stringify({ bare: before, imported }));
  process.exit(0);
}
// A service type of this process's own, so two runs side by side do not connect to each other.
const s = new PeerSession({ serviceType: `lone${process.pid.toString(36)}`, security: { mode: 'psk', key: '00112233445566778899aabbccddeeff' }, interfaces: ['lo'] });
await s.start();
// Idle long enough for V8 to shrink the young generation start-up grew (~10 s): the idle figure.
await new Promise((r) => setTimeout(r, 15_000));
const started = mem();
console.log(JSON.stringify({ bare: before, imported, started }));
await s.close();
process.exit(0);
