/**
 * Benchmark browser (runs inside a lab host): peerlink's library browser, printing the
 * wall-clock time at which each instance is resolved: {"event":"added","name","t"}.
 * Args: TYPE.
 */
import { Mdns } from '../../src/dnssd/index.js';

const now = (): number => performance.timeOrigin + performance.now();
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const mdns = new Mdns({ host: 'bench-browser' });
const browser = mdns.browse({ type: process.argv[2] ?? '_bench._tcp' });
browser.on('added', (s) => out({ event: 'added', name: s.name, t: now() }));
browser.on('removed', (s) => out({ event: 'removed', name: s.name, t: now() }));
await mdns.whenReady();
out({ event: 'ready' });
const shutdown = (): void => void mdns.close().then(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
