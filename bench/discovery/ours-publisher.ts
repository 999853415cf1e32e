/**
 * Benchmark driver (runs inside a lab host): one long-lived peerlink engine, like a running
 * Avahi daemon or Zeroconf instance, so the timing starts at `advertise()` itself.
 * stdin: `go NAME TYPE PORT` → {"event":"start","name","t"} then {"event":"registered","name","t"};
 * `stop NAME` → goodbye. `t` is wall-clock milliseconds (comparable across processes).
 */
import { createInterface } from 'node:readline';
import { Mdns, type Advertisement } from '../../src/dnssd/index.js';

const now = (): number => performance.timeOrigin + performance.now();
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const mdns = new Mdns({ host: process.argv[2] ?? 'bench-ours' });
const ads = new Map<string, Advertisement>();
await mdns.whenReady();
out({ event: 'ready' });
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, name, type, port] = line.trim().split(/\s+/);
  if (cmd === 'go' && name && type) {
    const t = now();
    const ad = mdns.advertise({ name, type, port: Number(port ?? 9) });
    out({ event: 'start', name, t });
    ad.on('registered', (n: string) => out({ event: 'registered', name: n, t: now() }));
    ads.set(name, ad);
  } else if (cmd === 'stop' && name) {
    void ads.get(name)?.stop();
    ads.delete(name);
  }
});
const shutdown = (): void => void mdns.close().then(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
