/**
 * The session benchmark's file scenarios: sendResource against a raw TLS file transfer (each
 * receive in a fresh process, for its peak RSS), and the cost of resuming (resume.ts).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { PeerSession } from '../../src/session/index.js';
import { Endpoint } from '../../src/net/index.js';
import { resumeOnce } from './resume.js';
import { CHUNK, KEY_HEX, forkChild, rawConnect, sessionOptions, waitFor } from './common.js';
import type { Row } from './report.js';

/** One resource transfer of `file` to a fresh receiver process; returns [seconds, receiver's peak RSS MiB]. */
async function resourceOnce(kind: 'session' | 'raw', file: string, size: number, work: string): Promise<[number, number]> {
  const dir = await mkdtemp(join(work, `recv-${kind}-`));
  const { c, ready } = forkChild(['resource-child', kind, dir]);
  try {
    const r = await ready;
    const done = waitFor(c, 'resource');
    const t0 = performance.now();
    if (kind === 'session') {
      const a = new PeerSession(sessionOptions('bench-rs'));
      await a.start();
      try {
        const peer = await a.connect(Endpoint.hostPort('127.0.0.1', r.sessionPort));
        await a.sendResource(file, 'bench.bin', peer).done;
      } finally {
        await a.close();
      }
    } else {
      const sock = await rawConnect(r.rawPort);
      const head = Buffer.alloc(8);
      head.writeBigUInt64BE(BigInt(size), 0);
      sock.write(head);
      // The sender hashes too, as sendResource does, and checks the receiver's digest.
      const hash = createHash('sha256');
      const digest = new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        sock.on('data', (d: Buffer) => parts.push(d));
        sock.on('end', () => resolve(Buffer.concat(parts)));
      });
      const src = createReadStream(file, { highWaterMark: CHUNK });
      src.on('data', (c) => hash.update(c));
      await pipeline(src, sock, { end: false });
      const theirs = await digest;
      if (!theirs.equals(hash.digest())) throw new Error('raw resource: digest mismatch');
      sock.destroy();
    }
    const got = await done;
    if (got.bytes !== size) throw new Error(`${kind} resource: receiver saved ${got.bytes} of ${size} bytes`);
    return [(performance.now() - t0) / 1000, (got.maxRssKiB ?? 0) / 1024];
  } finally {
    c.send({ type: 'quit' });
    await new Promise((r) => c.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

export async function resourceScenario(gibs: number[], rounds: number): Promise<Row[]> {
  const work = await mkdtemp(join(tmpdir(), 'peerlink-bench-'));
  const rows: Row[] = [];
  try {
    for (const gib of gibs) {
      const size = Math.round(gib * 1024 ** 3);
      const file = join(work, `src-${gib}.bin`);
      // Sparse: created instantly and takes no disk; the bytes still go through every layer.
      const fh = await open(file, 'w');
      await fh.truncate(size);
      await fh.close();
      const time: Row = { name: `resource ${gib} GiB throughput`, unit: 'MB/s', session: [], raw: [], better: 'higher', target: '' };
      const mem: Row = { name: `resource ${gib} GiB receiver peak RSS`, unit: 'MiB', session: [], raw: [], better: 'lower', target: 'raw+30' };
      for (let r = 0; r < rounds; r++) {
        for (const kind of r % 2 === 0 ? (['session', 'raw'] as const) : (['raw', 'session'] as const)) {
          process.stderr.write(`bench: resource ${gib} GiB ${kind} (round ${r + 1}/${rounds})\n`);
          const [secs, rss] = await resourceOnce(kind, file, size, work);
          (kind === 'session' ? time.session : time.raw).push(size / secs / 1e6);
          (kind === 'session' ? mem.session : mem.raw).push(rss);
        }
      }
      await rm(file, { force: true });
      rows.push(time, mem);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

/**
 * Resuming (resume.ts): the "raw" column is what starting over would cost — no prefix check
 * (0 ms of it) and every byte the receiver held sent again.
 */
export async function resumeScenario(mib: number, rounds: number): Promise<Row[]> {
  const wait: Row = { name: `resume ${mib} MiB: reconnect → first resumed byte`, unit: 'ms', session: [], raw: [], better: 'lower', target: '', note: 'raw: starting over skips the prefix check (0 ms) but re-sends what the receiver held' };
  // MB, not MiB: the MiB rows are the resource memory rows checked for flatness below.
  const resent: Row = { name: `resume ${mib} MiB: bytes sent again`, unit: 'MB', session: [], raw: [], better: 'lower', target: '' };
  for (let r = 0; r < rounds; r++) {
    process.stderr.write(`bench: resume ${mib} MiB (round ${r + 1}/${rounds})\n`);
    const s = await resumeOnce(mib * 1024 * 1024, KEY_HEX);
    wait.session.push(s.reconnectToFirstByteMs);
    wait.raw.push(0);
    resent.session.push(s.resentBytes / 1e6);
    resent.raw.push(s.heldBytes / 1e6);
  }
  return [wait, resent];
}
