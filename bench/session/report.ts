/**
 * The session benchmark's results table: one row per measurement, medians of its rounds,
 * ratios against raw TLS and js-libp2p, and the targets they are checked against.
 */
import { median } from './common.js';

export interface Row {
  name: string;
  unit: string;
  session: number[];
  raw: number[];
  /** 'higher' when more is better (rates), 'lower' for times and memory. */
  better: 'higher' | 'lower';
  target: string;
  /** Ratio session / raw the target needs (≥ for higher, ≤ for lower), if any. */
  goal?: number;
  libp2p?: number;
  libp2pGoal?: number;
  /** Extra target text checked by hand below the table. */
  note?: string;
}

export function printTable(rows: Row[], rounds: string, lpNote: string): void {
  const fmt = (n: number): string => (n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 3));
  const cols: Array<[string, number]> = [['measurement', -40], ['unit', -6], ['session', 12], ['raw tls', 12], ['ratio', 6], ['target', 7], ['ok', 3], ['js-libp2p', 10], ['ratio', 7], ['target', 7], ['ok', 3]];
  const line = (cells: string[]): string => cells.map((v, i) => ((cols[i] as [string, number])[1] < 0 ? v.padEnd(-(cols[i] as [string, number])[1]) : v.padStart((cols[i] as [string, number])[1]))).join(' ');
  console.log(`peerlink session benchmark — Node ${process.version}, TLS-PSK, 127.0.0.1, peers in separate processes; medians of ${rounds}`);
  console.log(line(cols.map(([n]) => n)));
  const misses: string[] = [];
  for (const row of rows) {
    const s = median(row.session);
    const r = median(row.raw);
    const ratio = s / r;
    let ok = '';
    if (row.goal !== undefined) {
      ok = row.better === 'higher' ? (ratio >= row.goal ? 'yes' : 'NO') : ratio <= row.goal ? 'yes' : 'NO';
    } else if (row.target === 'raw+30') ok = s <= r + 30 ? 'yes' : 'NO';
    if (ok === 'NO') misses.push(row.name);
    const l = row.libp2p;
    const lRatio = l === undefined ? undefined : s / l;
    let lOk = '';
    if (lRatio !== undefined && row.libp2pGoal !== undefined) lOk = lRatio >= row.libp2pGoal ? 'yes' : 'NO';
    if (lOk === 'NO') misses.push(`${row.name} vs js-libp2p`);
    console.log(line([row.name, row.unit, fmt(s), fmt(r), Number.isFinite(ratio) ? ratio.toFixed(2) : '—', row.target, ok, l === undefined ? '' : fmt(l), lRatio === undefined ? '' : lRatio.toFixed(1), row.libp2pGoal === undefined ? '' : `≥ ${row.libp2pGoal}`, lOk]));
  }
  // Resource memory flatness: the largest file's peak within 10 % of the smallest's.
  const mem = rows.filter((r) => r.unit === 'MiB');
  if (mem.length >= 2) {
    const first = median((mem[0] as Row).session);
    const last = median((mem[mem.length - 1] as Row).session);
    const flat = Math.abs(last - first) <= 0.1 * first;
    console.log(`resource peak RSS, session: ${fmt(first)} MiB (${(mem[0] as Row).name.split(' ')[1]} GiB) vs ${fmt(last)} MiB (${(mem[mem.length - 1] as Row).name.split(' ')[1]} GiB): ${flat ? 'flat (within 10 %)' : 'NOT flat (target: within 10 %)'}`);
    if (!flat) misses.push('resource memory flat in file size');
  }
  if (lpNote) console.log(lpNote);
  console.log('ratio = session / other. RTT, time to connected and RSS: lower is better. Targets (issue 4): messages ≥ 0.8× raw TLS and ≥ 20× js-libp2p, bulk ≥ 0.9× raw TLS, resource peak RSS ≤ raw TLS + 30 MiB and flat in file size.');
  console.log(misses.length ? `missed: ${misses.join('; ')}` : 'every target in this table met');
  for (const row of rows) process.stderr.write(`bench: samples ${row.name}: session [${row.session.map(fmt).join(', ')}] raw [${row.raw.map(fmt).join(', ')}]\n`);
}
