/**
 * Where a folder send's time goes: `peerlink send DIR --to R` between two namespace hosts (as
 * run.ts), with both processes' CPU (user, system: /proc/<pid>/stat) over the send, and, with
 * --samples, per 100 ms. Several builds (or environments) alternate round by round against the
 * same folder, each with a receiver of its own:
 *
 *   node dist/bench/transfer/folder-cpu.js [--files 10000] [--rounds 3] [--min-kib 1] [--max-kib 64]
 *       [--variant NAME=BIN[,ENV=VALUE…]]… [--samples] [--prof DIR] [--stderr]
 *
 * BIN is a checkout's bin/peerlink.js (default: this checkout's). --prof DIR runs every process
 * with --cpu-prof into DIR; --stderr prints each process's stderr (a build instrumented to print
 * timings there).
 */
import { mkdir, mkdtemp, rm, writeFile, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createLab } from '../../test/harness/netns.js';
import { waitForJson, killAllTracked, type TrackedProcess } from '../../test/harness/proc.js';
import { PEERLINK_BIN } from '../../test/harness/paths.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    'min-kib': { type: 'string', default: '1' },
    'max-kib': { type: 'string', default: '64' },
    variant: { type: 'string', multiple: true },
    samples: { type: 'boolean', default: false },
    stderr: { type: 'boolean', default: false },
    prof: { type: 'string' },
  },
});
const FILES = Number(values.files);
const ROUNDS = Number(values.rounds);
const MIN = Number(values['min-kib']) * 1024;
const MAX = Number(values['max-kib']) * 1024;
const KEY = randomBytes(32).toString('hex');
const PROF = values.prof ? ['--cpu-prof', '--cpu-prof-dir', values.prof] : [];
const TICKS_PER_S = 100; // USER_HZ on Linux

interface Variant {
  name: string;
  bin: string;
  env: Record<string, string>;
}
const VARIANTS: Variant[] = (values.variant ?? [`this=${PEERLINK_BIN}`]).map((v) => {
  const [head, ...envs] = v.split(',');
  const eq = head!.indexOf('=');
  return { name: head!.slice(0, eq), bin: head!.slice(eq + 1), env: Object.fromEntries(envs.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) };
});

async function cpuTicks(pid: number): Promise<{ user: number; sys: number } | undefined> {
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), sys: Number(f[12]) };
  } catch {
    return undefined;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

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
    const receivers = new Map<string, { recv: TrackedProcess; dst: string; service: string; env: NodeJS.ProcessEnv }>();
    for (const [i, v] of VARIANTS.entries()) {
      const dst = join(work, `dst-${i}`);
      await mkdir(dst, { recursive: true });
      const service = `plcpu${process.pid % 10000}v${i}`;
      const env = { ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1', ...v.env };
      const recv = lab.spawnNode(2, PROF.length > 0 ? PROF[0]! : v.bin, [...PROF.slice(1), ...(PROF.length > 0 ? [v.bin] : []), 'receive', '--service', service, '--name', 'R', '--dir', dst, '--json', '--yes'], { env });
      await waitForJson(recv, (e) => e.event === 'listening', 30_000);
      receivers.set(v.name, { recv, dst, service, env });
    }
    const results = new Map<string, Array<{ wall: number; su: number; ss: number; ru: number; rs: number }>>();
    for (let round = 0; round < ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const v of order) {
        const { recv, dst, service, env } = receivers.get(v.name)!;
        for (const n of await readdir(dst)) await rm(join(dst, n), { recursive: true, force: true });
        await new Promise((res) => setTimeout(res, 1500)); // past the previous send's mDNS answers (RFC 6762 §6)
        const r0 = (await cpuTicks(recv.pid!))!;
        const errFrom = recv.stderrLines.length;
        const t0 = performance.now();
        const send = lab.spawnNode(1, PROF.length > 0 ? PROF[0]! : v.bin, [...PROF.slice(1), ...(PROF.length > 0 ? [v.bin] : []), 'send', folder, '--service', service, '--to', 'R', '--timeout', '20'], { env });
        const samples: string[] = [];
        let last = { s: { user: 0, sys: 0 }, r: r0 };
        let sendTicks = { user: 0, sys: 0 };
        let exited = false;
        void send.exited.then(() => (exited = true));
        while (!exited) {
          await new Promise((res) => setTimeout(res, 1000 / 10));
          const s = await cpuTicks(send.pid!);
          const r = await cpuTicks(recv.pid!);
          if (!s || !r) continue;
          sendTicks = s;
          const d = (a: number, b: number): string => String(Math.round(a - b)).padStart(3);
          samples.push(`${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s  sender u${d(s.user, last.s.user)} s${d(s.sys, last.s.sys)}  receiver u${d(r.user, last.r.user)} s${d(r.sys, last.r.sys)}`);
          last = { s, r };
        }
        const wall = (performance.now() - t0) / 1000;
        const { code } = await send.exited;
        if (code !== 0) throw new Error(`${v.name}: send failed (${code}): ${send.stderrLines.slice(-20).join('\n')}`);
        const r1 = (await cpuTicks(recv.pid!))!;
        const row = { wall, su: sendTicks.user / TICKS_PER_S, ss: sendTicks.sys / TICKS_PER_S, ru: (r1.user - r0.user) / TICKS_PER_S, rs: (r1.sys - r0.sys) / TICKS_PER_S };
        results.set(v.name, [...(results.get(v.name) ?? []), row]);
        process.stdout.write(`round ${round + 1} ${v.name}: ${wall.toFixed(2)} s, ${(bytes / 1e6 / wall).toFixed(1)} MB/s; CPU s: sender user ${row.su.toFixed(2)} sys ${row.ss.toFixed(2)}; receiver user ${row.ru.toFixed(2)} sys ${row.rs.toFixed(2)}\n`);
        if (values.samples) process.stdout.write(`per 100 ms, ticks (10 = one core):\n${samples.join('\n')}\n`);
        if (values.stderr) process.stdout.write(`sender stderr:\n${send.stderrLines.join('\n')}\nreceiver stderr:\n${recv.stderrLines.slice(errFrom).join('\n')}\n`);
      }
    }
    for (const { recv } of receivers.values()) recv.signal('SIGINT');
    process.stdout.write(`\nmedians of ${ROUNDS} alternating rounds, ${FILES} files, ${(bytes / 1e6).toFixed(0)} MB\n\n| variant | wall s | MB/s | sender user s | sender sys s | receiver user s | receiver sys s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`);
    for (const v of VARIANTS) {
      const rs = results.get(v.name) ?? [];
      const m = (k: 'wall' | 'su' | 'ss' | 'ru' | 'rs'): string => median(rs.map((r) => r[k])).toFixed(2);
      process.stdout.write(`| ${v.name} | ${m('wall')} | ${(bytes / 1e6 / median(rs.map((r) => r.wall))).toFixed(1)} | ${m('su')} | ${m('ss')} | ${m('ru')} | ${m('rs')} |\n`);
    }
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
