/**
 * Session benchmark: PeerSession against the same traffic written directly on `node:tls`
 * with the same PSK cipher suites, peers in separate processes, on 127.0.0.1 (no discovery:
 * `connect()` by address, so nothing is multicast).
 *
 *   npm run bench:session [-- --rounds 3 --messages 1000000 --bulk-mib 512 --rtt 2000 --connects 20]
 *   npm run bench:session -- --scenarios messages,bulk --rounds 5 --no-libp2p
 *   npm run bench:session -- --scenarios resource --resource-gib 1,10 [--resource-rounds 1]
 *   npm run bench:session -- --scenarios resume [--resume-mib 512]   (cost of resuming: resume.ts)
 *   (also: --sides session|raw to profile one side, --no-warmup, --libp2p-messages, --libp2p-bulk-mib)
 *
 * Every scenario runs `--rounds` times, session and raw TLS alternating which goes first,
 * and the table shows medians (this machine's run-to-run noise is ±30 %). The raw side is
 * what a competent app would write: one length prefix per message, frames merged into
 * 64 KiB writes, drain-based backpressure, and a receiver that hands each message to a
 * handler as its own Buffer view (as the session does). When bench/libp2p is installed
 * (`npm run bench:libp2p:install`), js-libp2p (tcp + noise + yamux) runs last, alone, with
 * the same message and chunk sizes (fewer messages by default: `--libp2p-messages`; it is
 * ~50x slower). `--resource-gib 1,10` adds sendResource of files of those sizes (sparse, in a
 * temp dir, deleted afterwards) against a raw TLS file transfer, comparing the receiving
 * process's peak RSS.
 *
 * This file is the parent (sender / measurer) and the entry of every process; the parts:
 * common.ts (what both processes share), receiver.ts (the forked receivers), scenarios.ts
 * (messages, RTT, bulk, connect, CPU time), resource-scenarios.ts (files, resuming),
 * libp2p.ts (the js-libp2p run) and report.ts (the table).
 */
import { PeerSession } from '../../src/session/index.js';
import type { PeerID } from '../../src/session/peer-id.js';
import { Endpoint } from '../../src/net/index.js';
import { MSG_SIZE, arg, argList, forkChild, rawConnect, sessionOptions, type ParentMsg } from './common.js';
import { child, resourceChild } from './receiver.js';
import { bulkRaw, bulkSession, connectRaw, connectSession, messagesRaw, messagesSession, rttRaw, rttSession, withCpu, type Ctx, type CpuSinks } from './scenarios.js';
import { resourceScenario, resumeScenario } from './resource-scenarios.js';
import { runLibp2p } from './libp2p.js';
import { printTable, type Row } from './report.js';

async function parent(): Promise<void> {
  const N = arg('messages', 1_000_000);
  const BULK = arg('bulk-mib', 512) * 1024 * 1024;
  const RTTS = arg('rtt', 2000);
  const CONNECTS = arg('connects', 20);
  const ROUNDS = Math.max(1, arg('rounds', 3));
  const scenarios = new Set(argList('scenarios', 'messages,rtt,bulk,connect'));
  const resourceGib = argList('resource-gib', '').map(Number);
  if (resourceGib.length > 0) scenarios.add('resource');
  const { c, ready: readyP } = forkChild(['child']);
  const ready = await readyP;
  const tell = (m: ParentMsg): void => {
    c.send(m);
  };
  const a = new PeerSession(sessionOptions('bench-a'));
  await a.start();
  const peer: PeerID = await a.connect(Endpoint.hostPort('127.0.0.1', ready.sessionPort));
  const raw = await rawConnect(ready.rawPort);
  const x: Ctx = { c, a, peer, raw, rawPort: ready.rawPort, tell };
  const rows: Row[] = [];
  // For profiling one side alone: --sides session (or raw) skips the other.
  const sides = argList('sides', 'session,raw');
  const skip = (): Promise<number> => Promise.resolve(NaN);
  const add = (row: Row, s: () => Promise<number>, r: () => Promise<number>) => ({ row, s: sides.includes('session') ? s : skip, r: sides.includes('raw') ? r : skip });
  // CPU time of both processes per unit of work, next to the rate it was measured with.
  const cpuRows = new Map<Row, Row[]>();
  const withCpuRow = (p: { row: Row; s: () => Promise<number>; r: () => Promise<number> }, name: string, unit: string, units: number, per: number) => {
    const cpuRow = (label: string): Row => ({ name: label, unit, session: [], raw: [], better: 'lower', target: '' });
    const [both, sender, receiver] = [cpuRow(`  ${name} (both processes)`), cpuRow('    sender'), cpuRow('    receiver')];
    cpuRows.set(p.row, [both, sender, receiver]);
    const sinks = (side: 'session' | 'raw'): CpuSinks => ({ both: both[side], sender: sender[side], receiver: receiver[side] });
    return { row: p.row, s: () => withCpu(x, p.s, units, per, sinks('session')), r: () => withCpu(x, p.r, units, per, sinks('raw')) };
  };
  const plan = [
    scenarios.has('messages') &&
      withCpuRow(
        add({ name: `${MSG_SIZE}-byte messages (pipelined)`, unit: 'msg/s', session: [], raw: [], better: 'higher', target: '≥ 0.8', goal: 0.8, libp2pGoal: 20 }, () => messagesSession(x, N), () => messagesRaw(x, N)),
        'CPU per message',
        'ns',
        N,
        1,
      ),
    scenarios.has('rtt') && add({ name: `RTT p50 (${MSG_SIZE}-byte ping-pong)`, unit: 'µs', session: [], raw: [], better: 'lower', target: '' }, () => rttSession(x, RTTS), () => rttRaw(x, RTTS)),
    scenarios.has('bulk') &&
      withCpuRow(
        add({ name: `bulk stream (${BULK >> 20} MiB, 64 KiB writes)`, unit: 'MB/s', session: [], raw: [], better: 'higher', target: '≥ 0.9', goal: 0.9 }, () => bulkSession(x, BULK), () => bulkRaw(x, BULK)),
        'CPU per MiB',
        'µs',
        BULK,
        1024 * 1024 / 1000,
      ),
    scenarios.has('connect') && add({ name: 'time to connected p50', unit: 'ms', session: [], raw: [], better: 'lower', target: '' }, () => connectSession(ready.sessionPort, CONNECTS), () => connectRaw(x, CONNECTS)),
  ].filter((p) => p !== false);
  // Warm-up, not recorded: a side that runs first in round 1 would otherwise pay for JIT
  // compilation (the first RTT round was 2.5x slower than the next ones).
  if (!process.argv.includes('--no-warmup')) {
    process.stderr.write('bench: warm-up\n');
    const n = Math.ceil(N / 10);
    const warm: Array<[string, () => Promise<number>]> = [
      ['messages', () => messagesSession(x, n)],
      ['messages', () => messagesRaw(x, n)],
      ['rtt', () => rttSession(x, 300)],
      ['rtt', () => rttRaw(x, 300)],
      ['bulk', () => bulkSession(x, 32 << 20)],
      ['bulk', () => bulkRaw(x, 32 << 20)],
    ];
    for (const [name, run] of warm) if (scenarios.has(name)) await run();
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of plan) {
      process.stderr.write(`bench: ${p.row.name} (round ${round + 1}/${ROUNDS})\n`);
      // Alternate which side goes first: a background job that starts mid-run then hurts both.
      if (round % 2 === 0) {
        p.row.session.push(await p.s());
        p.row.raw.push(await p.r());
      } else {
        p.row.raw.push(await p.r());
        p.row.session.push(await p.s());
      }
    }
  }
  for (const p of plan) {
    rows.push(p.row);
    rows.push(...(cpuRows.get(p.row) ?? []));
  }
  raw.destroy();
  await a.close();
  tell({ type: 'quit' });
  await new Promise((r) => c.once('exit', r));
  const resourceRounds = Math.max(1, arg('resource-rounds', Math.min(ROUNDS, 2)));
  if (scenarios.has('resource')) rows.push(...(await resourceScenario(resourceGib.length ? resourceGib : [1], resourceRounds)));
  if (scenarios.has('resume')) rows.push(...(await resumeScenario(arg('resume-mib', 512), resourceRounds)));

  // js-libp2p last, alone, so it does not compete with the runs above.
  let lpNote = '';
  const lpMessages = arg('libp2p-messages', Math.min(N, 50_000));
  const lpBulk = arg('libp2p-bulk-mib', Math.min(BULK >> 20, 128));
  if (!process.argv.includes('--no-libp2p') && plan.length > 0) {
    process.stderr.write('bench: js-libp2p\n');
    const lp = await runLibp2p(['--messages', String(lpMessages), '--bulk-mib', String(lpBulk), '--rtt', String(RTTS), '--connects', String(Math.min(CONNECTS, 10))], arg('libp2p-timeout', 180) * 1000);
    if (typeof lp === 'string') lpNote = lp;
    else {
      for (const row of rows) {
        if (row.unit === 'msg/s') row.libp2p = lp.messagesPerSec;
        else if (row.name.startsWith('RTT')) row.libp2p = lp.rttP50Us;
        else if (row.name.startsWith('bulk')) row.libp2p = (lp.bulkMiBps * 1048576) / 1e6;
        else if (row.name.startsWith('time to connected')) row.libp2p = lp.connectMs;
      }
      lpNote = `js-libp2p: ${lpMessages} messages, ${lpBulk} MiB bulk, one run (tcp + noise + yamux)`;
    }
  }
  printTable(rows, scenarios.has('resource') ? `${ROUNDS} round(s), resources ${resourceRounds}` : `${ROUNDS} round(s)`, lpNote);
}

if (process.argv[2] === 'child') void child();
else if (process.argv[2] === 'resource-child') void resourceChild(process.argv[3] as string, process.argv[4] as string);
else
  parent().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
