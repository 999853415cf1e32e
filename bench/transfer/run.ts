/**
 * Transfer benchmark (issue 15): `peerlink send` against `scp` and `rsync -a` over OpenSSH,
 * host to host between two network namespaces on one bridge that this bench creates, for
 * (a) one large file and (b) a folder of many small files.
 *
 *   npm run bench:transfer -- [--file-mib 1024] [--files 10000] [--min-kib 1] [--max-kib 64]
 *                             [--rounds 3] [--tools peerlink,scp,rsync] [--cases file,folder]
 *
 * sshd (Debian's) is started inside the receiving namespace with a generated host key and a
 * key-only authorized_keys; clients use `-o StrictHostKeyChecking=no`. Each run times the
 * sending command from spawn to exit (session setup / ssh handshake included), into an emptied
 * destination; tools alternate within every round (the order rotates), and the table shows
 * medians in MB/s (10^6 bytes/s) and peerlink's ratio to the faster of scp and rsync. Not a
 * test: on a shared machine the numbers are noisy (see README.md). Root and iproute2 needed.
 */
import { mkdir, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createLab } from '../../test/harness/netns.js';
import { waitForJson, killAllTracked } from '../../test/harness/proc.js';
import { PEERLINK_BIN } from '../../test/harness/paths.js';
import { SSH_PORT, startSshd } from './sshd.js';

const { values } = parseArgs({
  options: {
    'file-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '10000' },
    'min-kib': { type: 'string', default: '1' },
    'max-kib': { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    tools: { type: 'string', default: 'peerlink,scp,rsync' },
    cases: { type: 'string', default: 'file,folder' },
    'node-args': { type: 'string', default: '' },
    bin: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench:transfer -- [options]   (root: creates two network namespaces)
  peerlink send against scp and rsync -a over OpenSSH, host to host; medians in MB/s
  --file-mib N     size of the one-file case (1024)
  --files N        files in the folder case (10000), sizes spread over --min-kib..--max-kib (1..64)
  --rounds N       alternating rounds per tool (3)
  --tools LIST     peerlink,scp,rsync
  --cases LIST     file,folder
  --node-args='A B'  extra node options for peerlink's sender and receiver (e.g. '--cpu-prof --cpu-prof-dir=/tmp/p')
  --bin PATH       the peerlink to time (another checkout's bin/peerlink.js; default this one's)
`);
  process.exit(0);
}
const FILE_BYTES = Number(values['file-mib']) * 1024 * 1024;
const FILES = Number(values.files);
const MIN = Number(values['min-kib']) * 1024;
const MAX = Number(values['max-kib']) * 1024;
const ROUNDS = Number(values.rounds);
const TOOLS = values.tools.split(',') as Array<'peerlink' | 'scp' | 'rsync'>;
const CASES = values.cases.split(',') as Array<'file' | 'folder'>;
const NODE_ARGS = values['node-args'].split(' ').filter((a) => a !== '');
/** The peerlink timed (both ends): --bin, or this checkout's. */
const BIN = values.bin ?? PEERLINK_BIN;
const KEY = randomBytes(32).toString('hex');
const SERVICE = `plbench${process.pid % 10000}`;

async function makeData(work: string): Promise<{ file: string; folder: string; folderBytes: number }> {
  const src = join(work, 'src');
  await mkdir(src, { recursive: true });
  const file = join(src, 'big.bin');
  if (CASES.includes('file')) {
    const fh = await import('node:fs/promises').then((m) => m.open(file, 'w'));
    const chunk = randomBytes(8 * 1024 * 1024);
    for (let left = FILE_BYTES; left > 0; left -= chunk.length) await fh.write(chunk, 0, Math.min(left, chunk.length));
    await fh.close();
  }
  const folder = join(src, 'many');
  let folderBytes = 0;
  if (CASES.includes('folder')) {
    // 100 files per directory, sizes spread evenly over [MIN, MAX].
    const pool = randomBytes(MAX);
    for (let i = 0; i < FILES; i++) {
      const dir = join(folder, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
      if (i % 100 === 0) await mkdir(dir, { recursive: true });
      const size = MIN + Math.floor(((MAX - MIN) * ((i * 7919) % FILES)) / Math.max(1, FILES - 1));
      await writeFile(join(dir, `f${i}.dat`), pool.subarray(0, size));
      folderBytes += size;
    }
  }
  return { file, folder, folderBytes };
}


async function emptied(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/transfer needs root (network namespaces)');
  const work = await mkdtemp(join(tmpdir(), 'pl-bench-transfer-'));
  const lab = await createLab({ hosts: 2, tag: 'xfer' });
  try {
    process.stderr.write('making data…\n');
    const data = await makeData(work);
    const sshOpts = await startSshd(lab, work);
    const addr = lab.host(2).ipv4!;
    const dst = { peerlink: join(work, 'dst-peerlink'), scp: join(work, 'dst-scp'), rsync: join(work, 'dst-rsync') };
    const env = { ...process.env, PEERLINK_PSK: KEY, NO_COLOR: '1' };
    await emptied(dst.peerlink);
    const recv = lab.spawn(2, process.execPath, [...NODE_ARGS, BIN, 'receive', '--service', SERVICE, '--name', 'R', '--dir', dst.peerlink, '--json', '--yes'], { env });
    await waitForJson(recv, (e) => e.event === 'listening', 30_000);

    const once = async (tool: 'peerlink' | 'scp' | 'rsync', c: 'file' | 'folder'): Promise<number> => {
      const src = c === 'file' ? data.file : data.folder;
      const d = dst[tool];
      if (tool === 'peerlink') {
        // The receiver keeps running: empty its directory's contents, not the directory.
        for (const n of await readdir(d)) await rm(join(d, n), { recursive: true, force: true });
      } else await emptied(d);
      // Untimed: the previous run's dirty pages (and the emptying's) go to disk now, so that
      // peerlink's syncfs before it confirms does not write scp's or rsync's files for them.
      await lab.exec(2, 'sync', [], { check: false, timeoutMs: 600_000 });
      const t0 = performance.now();
      let r;
      if (tool === 'peerlink') r = await lab.exec(1, process.execPath, [...NODE_ARGS, BIN, 'send', src, '--service', SERVICE, '--to', 'R', '--timeout', '20'], { env, check: false, timeoutMs: 900_000 });
      else if (tool === 'scp') r = await lab.exec(1, 'scp', ['-q', ...(c === 'folder' ? ['-r'] : []), ...sshOpts, '-P', String(SSH_PORT), src, `root@${addr}:${d}/`], { check: false, timeoutMs: 900_000 });
      else r = await lab.exec(1, 'rsync', ['-a', '-e', `ssh ${sshOpts.join(' ')} -p ${SSH_PORT}`, src, `root@${addr}:${d}/`], { check: false, timeoutMs: 900_000 });
      const s = (performance.now() - t0) / 1000;
      if (r.code !== 0) throw new Error(`${tool} ${c} failed (${r.code}): ${r.stderr.slice(-2000)}`);
      return s;
    };

    const times = new Map<string, number[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of CASES) {
        const order = TOOLS.map((_, i) => TOOLS[(i + round) % TOOLS.length]!);
        for (const tool of order) {
          const s = await once(tool, c);
          const k = `${c}:${tool}`;
          times.set(k, [...(times.get(k) ?? []), s]);
          process.stderr.write(`round ${round + 1} ${c} ${tool}: ${s.toFixed(2)} s\n`);
        }
      }
    }
    recv.signal('SIGINT');
    const median = (xs: number[]): number => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const rows: string[] = [];
    rows.push(`| case | ${TOOLS.join(' MB/s | ')} MB/s | peerlink ÷ faster of scp, rsync |`);
    rows.push(`| --- | ${TOOLS.map(() => '---:').join(' | ')} | ---: |`);
    for (const c of CASES) {
      const bytes = c === 'file' ? FILE_BYTES : data.folderBytes;
      const rate = (tool: string): number => bytes / 1e6 / median(times.get(`${c}:${tool}`) ?? [NaN]);
      const others = TOOLS.filter((t) => t !== 'peerlink').map(rate);
      const ratio = TOOLS.includes('peerlink') && others.length > 0 ? (rate('peerlink') / Math.max(...others)).toFixed(2) : '—';
      const label = c === 'file' ? `one file, ${(FILE_BYTES / 2 ** 20).toFixed(0)} MiB` : `folder, ${FILES} files of ${MIN / 1024}–${MAX / 1024} KiB (${(bytes / 1e6).toFixed(0)} MB)`;
      rows.push(`| ${label} | ${TOOLS.map((t) => rate(t).toFixed(1)).join(' | ')} | ${ratio} |`);
    }
    process.stdout.write(`\nmedians of ${ROUNDS} alternating runs, wall time of the sending command (setup included)\n\n${rows.join('\n')}\n`);
  } finally {
    await killAllTracked();
    await lab.teardown();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/transfer: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
