/**
 * Where `peerlink send`'s time goes besides moving bytes (issue 15): the same two namespace
 * hosts as run.ts, `peerlink receive --yes` (PSK) on one, and from the other, alternating
 * each round, `peerlink send FILE --to R --json` for a tiny file and (optionally) a large one,
 * `ssh host true`, and `scp` of the tiny file (the baseline's fixed cost).
 *
 *   node dist/bench/transfer/overhead.js [--rounds 5] [--big-mib 1024] [--debug] [--before BIN]
 *
 * For peerlink it stamps, relative to spawn, the arrival of each --json line: the first
 * `peer … connected` (discovery + connect + handshake done), `sending` (offer goes out), the
 * first `progress` (first body bytes sent, after the receiver's consent), the last `progress`
 * (bytes = total: last byte handed to the connection), `sent` (the receiver's verified
 * confirmation, after its syncfs), `done` (session closed), and process exit. Also `node -e 0`
 * and `peerlink --version` (Node start-up and the CLI's first module). Medians in ms.
 * --debug adds NODE_DEBUG=peerlink and prints one run's stderr, with tshark's packets on the
 * sender's link, timestamped the same way. --before BIN (another build's bin/peerlink.js) adds
 * its `send` to the rotation against the same receiver, for a before/after in one run. Not a test.
 */
import { mkdir, mkdtemp, rm, writeFile, readdir, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createLab, type Lab } from '../../test/harness/netns.js';
import { waitForJson, killAllTracked, parseJsonLine } from '../../test/harness/proc.js';
import { PEERLINK_BIN } from '../../test/harness/paths.js';
import { SSH_PORT, startSshd } from './sshd.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'big-mib': { type: 'string', default: '0' },
    debug: { type: 'boolean', default: false },
    before: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const BIG = Number(values['big-mib']) * 1024 * 1024;
const KEY = randomBytes(32).toString('hex');
const SERVICE = `plover${process.pid % 10000}`;


type Marks = Record<string, number>;

/** One `peerlink send`, with the arrival time (ms since spawn) of each interesting --json line. */
async function timedSend(lab: Lab, file: string, env: NodeJS.ProcessEnv, debug: boolean, bin = PEERLINK_BIN): Promise<{ marks: Marks; stderr: string[] }> {
  const t0 = performance.now();
  const marks: Marks = {};
  const stderr: string[] = [];
  const p = lab.spawn(1, process.execPath, [bin, 'send', file, '--service', SERVICE, '--to', 'R', '--timeout', '20', '--json'], {
    env: debug ? { ...env, NODE_DEBUG: 'peerlink' } : env,
  });
  const at = (): number => performance.now() - t0;
  p.on('stderrLine', (l: string) => stderr.push(`${at().toFixed(1).padStart(8)} ${l}`));
  p.on('line', (l: string) => {
    const e = parseJsonLine(l);
    if (!e) return;
    const t = at();
    const ev = String(e.event);
    if (ev === 'peer' && e.state === 'connected') marks.connected ??= t;
    else if (ev === 'sending') marks.offer ??= t;
    else if (ev === 'progress') {
      marks.firstByte ??= t;
      if (e.bytes === e.total) marks.lastByte ??= t;
    } else if (ev === 'sent') marks.sent ??= t;
    else if (ev === 'done') marks.done ??= t;
  });
  const r = await p.exited;
  marks.exit = at();
  if (r.code !== 0) throw new Error(`send failed (${String(r.code)}): ${p.tail()}`);
  return { marks, stderr };
}

async function timed(lab: Lab, cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await lab.exec(1, cmd, args, { check: false, timeoutMs: 900_000 });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${cmd} failed (${String(r.code)}): ${r.stderr.slice(-1000)}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  const work = await mkdtemp(join(tmpdir(), 'pl-bench-overhead-'));
  const lab = await createLab({ hosts: 2, tag: 'xovh' });
  try {
    const src = join(work, 'src');
    await mkdir(src, { recursive: true });
    const tiny = join(src, 'tiny.txt');
    await writeFile(tiny, 'hello\n');
    const big = join(src, 'big.bin');
    if (BIG > 0) {
      const fh = await open(big, 'w');
      const chunk = randomBytes(8 * 1024 * 1024);
      for (let left = BIG; left > 0; left -= chunk.length) await fh.write(chunk, 0, Math.min(left, chunk.length));
      await fh.close();
    }
    const sshOpts = await startSshd(lab, work);
    const addr = lab.host(2).ipv4!;
    const dst = join(work, 'dst-peerlink');
    const dstScp = join(work, 'dst-scp');
    await mkdir(dst, { recursive: true });
    await mkdir(dstScp, { recursive: true });
    const env = { ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1' };
    const recv = lab.spawnNode(2, PEERLINK_BIN, ['receive', '--service', SERVICE, '--name', 'R', '--dir', dst, '--json', '--yes'], { env });
    await waitForJson(recv, (e) => e.event === 'listening', 30_000);
    // Past the receiver's announcements (RFC 6762 §8.3: two, 1 s apart): an answer within 1 s
    // of the last multicast of a record waits for that second (§6), a start-up effect only.
    await new Promise((res) => setTimeout(res, 3000));
    const clear = async (): Promise<void> => {
      for (const n of await readdir(dst)) await rm(join(dst, n), { recursive: true, force: true });
    };

    const rows = new Map<string, Marks[]>();
    const simple = new Map<string, number[]>();
    const add = (k: string, ms: number): void => void simple.set(k, [...(simple.get(k) ?? []), ms]);
    type Job = () => Promise<void>;
    const jobs: Array<[string, Job]> = [
      ['node -e 0', async () => add('node -e 0', await timed(lab, process.execPath, ['-e', '0']))],
      ['peerlink --version', async () => add('peerlink --version', await timed(lab, process.execPath, [PEERLINK_BIN, '--version']))],
      ['ssh host true', async () => add('ssh host true', await timed(lab, 'ssh', [...sshOpts, '-p', String(SSH_PORT), `root@${addr}`, 'true']))],
      ['scp tiny', async () => add('scp tiny', await timed(lab, 'scp', ['-q', ...sshOpts, '-P', String(SSH_PORT), tiny, `root@${addr}:${dstScp}/`]))],
      [
        'peerlink send tiny',
        async () => {
          await clear();
          const { marks } = await timedSend(lab, tiny, env, false);
          rows.set('tiny', [...(rows.get('tiny') ?? []), marks]);
        },
      ],
    ];
    const before = values.before;
    if (before !== undefined) {
      jobs.push([
        'before: peerlink send tiny',
        async () => {
          await clear();
          const { marks } = await timedSend(lab, tiny, env, false, before);
          rows.set('tiny (before)', [...(rows.get('tiny (before)') ?? []), marks]);
        },
      ]);
    }
    if (BIG > 0) {
      jobs.push(['scp big', async () => add(`scp ${values['big-mib']} MiB`, await timed(lab, 'scp', ['-q', ...sshOpts, '-P', String(SSH_PORT), big, `root@${addr}:${dstScp}/`]))]);
      jobs.push([
        'peerlink send big',
        async () => {
          await clear();
          const { marks } = await timedSend(lab, big, env, false);
          rows.set(`${values['big-mib']} MiB`, [...(rows.get(`${values['big-mib']} MiB`) ?? []), marks]);
        },
      ]);
      if (before !== undefined) {
        jobs.push([
          'before: peerlink send big',
          async () => {
            await clear();
            const { marks } = await timedSend(lab, big, env, false, before);
            rows.set(`${values['big-mib']} MiB (before)`, [...(rows.get(`${values['big-mib']} MiB (before)`) ?? []), marks]);
          },
        ]);
      }
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < jobs.length; i++) {
        const [label, job] = jobs[(i + round) % jobs.length]!;
        // Each run as if typed on its own: a receiver answers a query for a record it multicast
        // less than 1 s ago only once that second is over (RFC 6762 §6), so a send right after
        // another would pay for the one before it.
        await new Promise((res) => setTimeout(res, 1500));
        await job();
        process.stderr.write(`round ${round + 1}: ${label}\n`);
      }
    }
    if (values.debug) {
      await clear();
      // Packets on the sender's link (mDNS and the connection), stamped like the debug lines.
      const cap = lab.spawn(1, 'tshark', ['-i', 'eth0', '-l', '-n', '-t', 'e', '-f', 'udp port 5353 or tcp portrange 1024-65535'], {});
      await new Promise((res) => setTimeout(res, 2000));
      const epoch0 = Date.now();
      const { marks, stderr } = await timedSend(lab, tiny, env, true);
      await new Promise((res) => setTimeout(res, 500));
      cap.signal('SIGINT');
      await cap.exited;
      const packets = cap.stdoutLines.map((l) => {
        const m = /^\s*\d+\s+(\d+\.\d+)\s+(.*)$/.exec(l);
        return m ? `${(Number(m[1]) * 1000 - epoch0).toFixed(1).padStart(8)} pkt ${m[2]!.slice(0, 150)}` : undefined;
      });
      const lines = [...stderr, ...packets.filter((x): x is string => x !== undefined)].sort((a, b) => parseFloat(a) - parseFloat(b));
      process.stdout.write(`\none tiny send with NODE_DEBUG=peerlink and tshark on the sender's eth0 (ms since spawn):\n${lines.join('\n')}\n${JSON.stringify(marks)}\n`);
    }
    recv.signal('SIGINT');

    const cols = ['connected', 'offer', 'firstByte', 'lastByte', 'sent', 'done', 'exit'];
    const out: string[] = [];
    out.push(`medians of ${ROUNDS} alternating rounds, ms since spawn (load average at end: ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')})`, '');
    out.push(`| peerlink send | ${cols.join(' | ')} |`, `| --- | ${cols.map(() => '---:').join(' | ')} |`);
    for (const [k, ms] of rows) out.push(`| ${k} | ${cols.map((c) => median(ms.map((m) => m[c] ?? NaN)).toFixed(0)).join(' | ')} |`);
    out.push('', '| baseline | ms |', '| --- | ---: |');
    for (const [k, ms] of simple) out.push(`| ${k} | ${median(ms).toFixed(0)} |`);
    process.stdout.write(`\n${out.join('\n')}\n`);
  } finally {
    await killAllTracked();
    await lab.teardown();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/transfer/overhead: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
