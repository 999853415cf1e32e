/**
 * Where a folder send's time goes: `peerlink send DIR --to R` between two namespace hosts (as
 * run.ts), with each process's CPU (user, system: /proc/<pid>/stat) sampled every 100 ms, and
 * each process's stderr shown (run with PEERLINK_FOLDER_TRACE=1 under an instrumented build for
 * per-phase timings).
 *
 *   node dist/bench/transfer/folder-cpu.js [--files 10000] [--rounds 3] [--min-kib 1] [--max-kib 64]
 */
import { mkdir, mkdtemp, rm, writeFile, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createLab } from '../../test/harness/netns.js';
import { waitForJson, killAllTracked } from '../../test/harness/proc.js';
import { PEERLINK_BIN } from '../../test/harness/paths.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' }, 'min-kib': { type: 'string', default: '1' }, 'max-kib': { type: 'string', default: '64' }, prof: { type: 'string' } } });
/** --prof DIR: both processes run with --cpu-prof into DIR. */
const PROF = values.prof ? ['--cpu-prof', '--cpu-prof-dir', values.prof] : [];
const FILES = Number(values.files);
const ROUNDS = Number(values.rounds);
const MIN = Number(values['min-kib']) * 1024;
const MAX = Number(values['max-kib']) * 1024;
const KEY = randomBytes(32).toString('hex');
const SERVICE = `plcpu${process.pid % 10000}`;
const TICK = 100; // USER_HZ on Linux

async function cpuTicks(pid: number): Promise<{ user: number; sys: number } | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), sys: Number(f[12]) };
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'pl-bench-fcpu-'));
  const lab = await createLab({ hosts: 2, tag: 'fcpu' });
  try {
    const folder = join(work, 'src', 'many');
    const pool = randomBytes(MAX);
    let bytes = 0;
    for (let i = 0; i < FILES; i++) {
      const dir = join(folder, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
      if (i % 100 === 0) await mkdir(dir, { recursive: true });
      const size = MIN + Math.floor(((MAX - MIN) * ((i * 7919) % FILES)) / Math.max(1, FILES - 1));
      await writeFile(join(dir, `f${i}.dat`), pool.subarray(0, size));
      bytes += size;
    }
    const dst = join(work, 'dst');
    await mkdir(dst, { recursive: true });
    const env = { ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1' };
    const recv = lab.spawnNode(2, PROF.length > 0 ? PROF[0]! : PEERLINK_BIN, [...PROF.slice(1), ...(PROF.length > 0 ? [PEERLINK_BIN] : []), 'receive', '--service', SERVICE, '--name', 'R', '--dir', dst, '--json', '--yes'], { env });
    await waitForJson(recv, (e) => e.event === 'listening', 30_000);
    for (let round = 0; round < ROUNDS; round++) {
      for (const n of await readdir(dst)) await rm(join(dst, n), { recursive: true, force: true });
      const r0 = await cpuTicks(recv.pid!);
      const errFrom = recv.stderrLines.length;
      const t0 = performance.now();
      const send = lab.spawnNode(1, PROF.length > 0 ? PROF[0]! : PEERLINK_BIN, [...PROF.slice(1), ...(PROF.length > 0 ? [PEERLINK_BIN] : []), 'send', folder, '--service', SERVICE, '--to', 'R', '--timeout', '20'], { env });
      const samples: string[] = [];
      let last = { s: { user: 0, sys: 0 }, r: r0! };
      let sendTicks = { user: 0, sys: 0 };
      let exited = false;
      void send.exited.then(() => (exited = true));
      while (!exited) {
        await new Promise((res) => setTimeout(res, TICK));
        const s = await cpuTicks(send.pid!);
        const r = await cpuTicks(recv.pid!);
        if (!s || !r) continue;
        sendTicks = s;
        const pct = (a: number, b: number): string => String(Math.round(a - b)).padStart(3);
        samples.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s  sender u${pct(s.user, last.s.user)} s${pct(s.sys, last.s.sys)}  receiver u${pct(r.user, last.r.user)} s${pct(r.sys, last.r.sys)}`);
        last = { s, r };
      }
      const wall = (performance.now() - t0) / 1000;
      const r1 = (await cpuTicks(recv.pid!))!;
      process.stdout.write(`\nround ${round + 1}: ${wall.toFixed(2)} s, ${(bytes / 1e6 / wall).toFixed(1)} MB/s; CPU s: sender user ${(sendTicks.user / 100).toFixed(2)} sys ${(sendTicks.sys / 100).toFixed(2)}; receiver user ${((r1.user - r0!.user) / 100).toFixed(2)} sys ${((r1.sys - r0!.sys) / 100).toFixed(2)}\n`);
      process.stdout.write(`per ${TICK} ms, % of one core (ticks):\n${samples.join('\n')}\n`);
      process.stdout.write(`sender stderr:\n${send.stderrLines.join('\n')}\nreceiver stderr:\n${recv.stderrLines.slice(errFrom).join('\n')}\n`);
    }
    recv.signal('SIGINT');
  } finally {
    await killAllTracked();
    await lab.teardown();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`folder-cpu: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
