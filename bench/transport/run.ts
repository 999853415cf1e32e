/**
 * Transport benchmark: peerlink's Connection vs the same stacks written directly on
 * net / tls / ws, each sender and receiver in its own process, in the same run.
 *   npm run bench:transport -- [--size MiB] [--messages N] [--rtt N] [--setup N] [--rounds R]
 *                              [--stacks tcp,tls-psk,ws] [--scenarios bulk,messages,rtt,setup]
 * Prints medians over the rounds and ratios peerlink / raw. Not a test: numbers on a shared
 * machine are noisy, so raw and peerlink alternate within every round.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const PEER = fileURLToPath(new URL('./peer.js', import.meta.url));
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    messages: { type: 'string', default: '2000000' },
    rtt: { type: 'string', default: '10000' },
    setup: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '3' },
    stacks: { type: 'string', default: 'tcp,tls-psk,ws' },
    scenarios: { type: 'string', default: 'bulk,messages,rtt,setup' },
  },
});

type Result = Record<string, number>;

function firstLine(args: string[]): { line: Promise<string>; kill: () => void; done: Promise<void> } {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout });
  const line = new Promise<string>((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`peer ${args.join(' ')} exited with ${code}`)));
  });
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  return { line, kill: () => child.kill('SIGKILL'), done };
}

async function once(impl: string, stack: string, scenario: string, n: number): Promise<Result> {
  const receiver = firstLine(['receiver', impl, stack]);
  const { port } = JSON.parse(await receiver.line) as { port: number };
  try {
    const sender = firstLine(['sender', impl, stack, scenario, String(port), String(n)]);
    return JSON.parse(await sender.line) as Result;
  } finally {
    receiver.kill();
    await receiver.done;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

const sizes: Record<string, number> = {
  bulk: Number(values.size) * 1024 * 1024,
  messages: Number(values.messages),
  rtt: Number(values.rtt),
  setup: Number(values.setup),
};
const metrics: Record<string, Array<{ key: string; label: string; better: 'higher' | 'lower' }>> = {
  bulk: [{ key: 'mbps', label: 'bulk MB/s (64 KiB)', better: 'higher' }],
  messages: [{ key: 'msgsPerSec', label: '100 B msgs/s', better: 'higher' }],
  rtt: [
    { key: 'p50us', label: 'RTT p50 µs', better: 'lower' },
    { key: 'p99us', label: 'RTT p99 µs', better: 'lower' },
  ],
  setup: [{ key: 'setupMs', label: 'setup ms', better: 'lower' }],
};

const rounds = Number(values.rounds);
const rows: string[] = [];
console.log(`transport bench: ${rounds} rounds, bulk ${values.size} MiB, ${values.messages} messages, ${values.rtt} round trips, ${values.setup} setups (medians)`);
for (const stack of (values.stacks ?? '').split(',')) {
  for (const scenario of (values.scenarios ?? '').split(',')) {
    const n = sizes[scenario];
    if (n === undefined) throw new Error(`unknown scenario ${scenario}`);
    const got: Record<string, Result[]> = { raw: [], peerlink: [] };
    for (let r = 0; r < rounds; r++) {
      for (const impl of r % 2 === 0 ? ['raw', 'peerlink'] : ['peerlink', 'raw']) got[impl]?.push(await once(impl, stack, scenario, n));
    }
    for (const m of metrics[scenario] ?? []) {
      const raw = median((got.raw ?? []).map((x) => x[m.key] ?? NaN));
      const ours = median((got.peerlink ?? []).map((x) => x[m.key] ?? NaN));
      const ratio = ours / raw;
      const fmt = (v: number): string => (v >= 1000 ? v.toFixed(0) : v.toPrecision(3));
      const row = `${stack.padEnd(8)} ${m.label.padEnd(20)} raw ${fmt(raw).padStart(10)}  peerlink ${fmt(ours).padStart(10)}  ratio ${ratio.toFixed(2)}x (${m.better} is better)`;
      rows.push(row);
      console.log(row);
    }
  }
}
