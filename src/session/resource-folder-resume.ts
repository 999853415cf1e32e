/**
 * Interrupted folders resume file by file (docs/resources.md "Folders").
 *
 * The receiver of a resumable folder writes it into a staging directory named after the
 * folder's name and the SHA-256 of its manifest (`.peerlink-folder-partial-<24 hex>`), so the
 * same folder sent again — unchanged: same paths, sizes, modes and mtimes — finds it, and a
 * changed one does not. Beside the files, a journal (`.peerlink-journal`, a hidden name no
 * manifest path can take) records each file written and verified (`f <index> <sha256>`) and
 * each large file begun (`b <index>`: its bytes are written as they arrive, so an interruption
 * leaves a prefix of it).
 *
 * On resume the receiver re-reads every journalled file and keeps it only if its bytes still
 * have the journalled digest (a file the page cache never wrote back, or that someone touched,
 * is sent again), removes every other file, and offers: the held files (index ranges) and the
 * prefix of the file in flight (block digests, as a single file's resume: resource-prefix.ts).
 * The sender proves it holds the same files — the SHA-256 over the held files' SHA-256s, which
 * it computes by reading its own files and the receiver never reveals — and continues the file
 * in flight from the first block that differs. A wrong proof fails the transfer
 * (ERR_RESOURCE_VERIFY) and drops the partial folder; every file is verified as it arrives, as
 * always.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { PeerlinkError } from '../errors.js';
import type { FolderEntry, FolderManifest } from './resource-folder-manifest.js';
import { matchPrefix, scanPrefix, type PrefixScan } from './resource-prefix.js';
import { MAX_HELD_RANGES, type FolderResumeOffer } from './resource-wire.js';
import { mapWriteError } from './resource-sink.js';
import { fsPromises } from '../lazy-builtins.js';

/** A resumable folder's staging directory: `.peerlink-folder-partial-<24 hex>`. */
export const FOLDER_PARTIAL_PATTERN = /^\.peerlink-folder-partial-[0-9a-f]{24}$/;
export const JOURNAL_NAME = '.peerlink-journal';
/** Journal lines buffered before a write (a killed receiver loses at most these: those files are sent again). */
const JOURNAL_BATCH = 256;
const READ = 1024 * 1024;
const OPEN_READ = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** Staging directories in use in this process: a second transfer of the same folder at once gets one of its own. */
const busy = new Set<string>();

export function folderPartialName(name: string, manifestSha256: string): string {
  return `.peerlink-folder-partial-${createHash('sha256').update(`${name}\0${manifestSha256}`).digest('hex').slice(0, 24)}`;
}

/** The files of a manifest in wire order (their indices are what resume talks about). */
export function manifestFiles(manifest: FolderManifest): FolderEntry[] {
  return manifest.entries.filter((e) => e.kind === 'file');
}

/** The proof of the held files: SHA-256 over their SHA-256s (hex, in index order, each with a newline). */
export function heldProof(shas: Iterable<string>): string {
  const h = createHash('sha256');
  for (const s of shas) h.update(`${s}\n`);
  return h.digest('hex');
}

/** Index ranges [first, end) of a set of indices, merged. */
export function toRanges(indices: Iterable<number>): Array<[number, number]> {
  const sorted = [...indices].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}

/** Appends journal lines, a batch at a time. */
export class FolderJournal {
  #fh: FileHandle | undefined;
  #lines: string[] = [];
  #writing: Promise<void> = Promise.resolve();

  private constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  static async open(staging: string): Promise<FolderJournal> {
    const fh = await fsPromises().open(join(staging, JOURNAL_NAME), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0), 0o600);
    return new FolderJournal(fh);
  }

  /** A file written and verified. */
  done(index: number, sha256: string): void {
    this.#lines.push(`f ${index} ${sha256}\n`);
    if (this.#lines.length >= JOURNAL_BATCH) void this.flush().catch(() => undefined);
  }

  /** A large file is about to be written as it arrives: recorded at once, so its prefix can be resumed. */
  async begin(index: number): Promise<void> {
    this.#lines.push(`b ${index}\n`);
    await this.flush();
  }

  flush(): Promise<void> {
    const fh = this.#fh;
    if (!fh || this.#lines.length === 0) return this.#writing;
    const text = this.#lines.join('');
    this.#lines = [];
    this.#writing = this.#writing.then(() => fh.write(text).then(() => undefined));
    return this.#writing;
  }

  async close(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.#writing.catch(() => undefined);
    await this.#fh?.close().catch(() => undefined);
    this.#fh = undefined;
  }
}

/** What a resumable folder's staging directory holds. */
export interface FolderPartial {
  staging: string;
  /** Files written and verified, by index: their SHA-256. */
  held: Map<number, string>;
  /** The large file that was in flight, if part of it is held. */
  inflight?: { index: number; scan: PrefixScan };
  /** Bytes held (held files plus the prefix). */
  bytes: number;
  release(): void;
}

/**
 * Opens (or creates) the staging directory of the folder `name` with manifest digest
 * `manifestSha256` in `dir`, re-verifies what its journal says is held, and removes the rest.
 * Undefined if another transfer of this folder is using it.
 */
export async function openFolderPartial(dir: string, name: string, manifestSha256: string, manifest: FolderManifest): Promise<FolderPartial | undefined> {
  const staging = join(dir, folderPartialName(name, manifestSha256));
  if (busy.has(staging)) return undefined;
  busy.add(staging);
  const release = (): void => void busy.delete(staging);
  try {
    const st = await fsPromises().lstat(staging).catch(() => undefined);
    if (st && !st.isDirectory()) await fsPromises().rm(staging, { force: true });
    if (!st || !st.isDirectory()) {
      await fsPromises().mkdir(staging, { mode: 0o700 });
      return { staging, held: new Map(), bytes: 0, release };
    }
    const files = manifestFiles(manifest);
    const { done, begun } = await readJournal(staging, files.length);
    const held = new Map<number, string>();
    let bytes = 0;
    for (const [index, sha] of done) {
      const entry = files[index]!;
      if ((await hashFile(join(staging, ...entry.path.split('/')), entry.size)) === sha) {
        held.set(index, sha);
        bytes += entry.size;
      }
    }
    // Only as many ranges as an accept can carry: the rest are sent again.
    const ranges = toRanges(held.keys());
    for (const [a, b] of ranges.slice(MAX_HELD_RANGES)) for (let i = a; i < b; i++) held.delete(i);
    let inflight: FolderPartial['inflight'];
    if (begun !== undefined && !held.has(begun)) {
      const entry = files[begun]!;
      const fh = await fsPromises().open(join(staging, ...entry.path.split('/')), OPEN_READ).catch(() => undefined);
      if (fh) {
        try {
          const s = await fh.stat();
          const have = s.isFile() ? Math.min(s.size, entry.size) : 0;
          if (have > 0) {
            inflight = { index: begun, scan: await scanPrefix(fh, have) };
            bytes += have;
          }
        } finally {
          await fh.close();
        }
      }
    }
    // Everything else goes: files are created exclusively, so a stale one would block its rewrite.
    for (let i = 0; i < files.length; i++) {
      if (held.has(i) || inflight?.index === i) continue;
      await fsPromises().rm(join(staging, ...files[i]!.path.split('/')), { force: true, recursive: true });
    }
    // A fresh journal: what is held now, nothing begun.
    await fsPromises().rm(join(staging, JOURNAL_NAME), { force: true });
    const journal = await FolderJournal.open(staging);
    for (const [i, sha] of held) journal.done(i, sha);
    if (inflight) await journal.begin(inflight.index);
    await journal.close();
    return { staging, held, ...(inflight ? { inflight } : {}), bytes, release };
  } catch (err) {
    release();
    throw mapWriteError(err);
  }
}

/** The journal's lines (bounded: at most two per file, each a fixed shape; anything else ends the reading). */
async function readJournal(staging: string, files: number): Promise<{ done: Map<number, string>; begun: number | undefined }> {
  const done = new Map<number, string>();
  let begun: number | undefined;
  const fh = await fsPromises().open(join(staging, JOURNAL_NAME), OPEN_READ).catch(() => undefined);
  if (!fh) return { done, begun };
  let text: string;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > files * 2 * 80 + 4096) return { done, begun };
    text = (await fsPromises().readFile(fh)).toString('utf8');
  } finally {
    await fh.close();
  }
  for (const line of text.split('\n')) {
    const m = /^(?:f (\d{1,9}) ([0-9a-f]{64})|b (\d{1,9}))$/.exec(line);
    if (!m) continue;
    const index = Number(m[1] ?? m[3]);
    if (index >= files) continue;
    if (m[2] !== undefined) done.set(index, m[2]);
    else begun = index;
  }
  return { done, begun };
}

/** SHA-256 of exactly `size` bytes of a regular file (undefined if it is not one, or has another size). */
async function hashFile(path: string, size: number): Promise<string | undefined> {
  const fh = await fsPromises().open(path, OPEN_READ).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size !== size) return undefined;
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(Math.min(READ, Math.max(1, size)));
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) return undefined;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest('hex');
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** The sender's side of a folder resume: what to skip, the proof, and where the file in flight continues. */
export interface FolderResumePlan {
  skip: Set<number>;
  proof: string;
  /** The file in flight: its index, where it continues, and the hash of its bytes before that. */
  file?: { index: number; offset: number; hash: Hash };
  /** Bytes the receiver keeps (held files and the prefix). */
  kept: number;
}

/**
 * Checks the receiver's offer against our manifest (indices inside the folder, the prefix no
 * longer than its file) and hashes our own held files and the prefix: a local read, nothing sent.
 */
export async function planFolderResume(root: string, manifest: FolderManifest, offer: FolderResumeOffer, signal: AbortSignal): Promise<FolderResumePlan> {
  const files = manifestFiles(manifest);
  const bad = (what: string): PeerlinkError => new PeerlinkError('ERR_PROTOCOL', `resource stream: the receiver's folder resume offer ${what}`);
  const skip = new Set<number>();
  for (const [a, b] of offer.held) {
    if (b > files.length) throw bad('names files outside the folder');
    for (let i = a; i < b; i++) skip.add(i);
  }
  const shas: string[] = [];
  let kept = 0;
  for (const i of [...skip].sort((x, y) => x - y)) {
    if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
    const entry = files[i]!;
    // A file we cannot read whole now proves nothing: the proof fails, and the receiver starts over.
    shas.push((await hashFile(join(root, ...entry.path.split('/')), entry.size)) ?? '0'.repeat(64));
    kept += entry.size;
  }
  const proof = heldProof(shas);
  const p = offer.partial;
  if (!p) return { skip, proof, kept };
  if (p.file >= files.length || skip.has(p.file)) throw bad('names a file outside the folder, or one it holds');
  const entry = files[p.file]!;
  if (p.have > entry.size) throw bad(`claims ${p.have} bytes of a ${entry.size}-byte file`);
  const fh = await fsPromises().open(join(root, ...entry.path.split('/')), OPEN_READ).catch(() => undefined);
  const body = fh?.createReadStream({ start: 0, end: Math.max(0, p.have - 1), highWaterMark: READ });
  let match;
  try {
    // A file we cannot read now continues from 0 (it is marked changed when it is sent).
    match = body ? await matchPrefix(body as AsyncIterable<Buffer>, p.block, p.digests, p.have, signal) : { offset: 0, hash: createHash('sha256') };
  } catch (err) {
    if (err instanceof PeerlinkError) throw err;
    match = { offset: 0, hash: createHash('sha256') };
  } finally {
    body?.destroy();
    await fh?.close().catch(() => undefined);
  }
  return { skip, proof, file: { index: p.file, offset: match.offset, hash: match.hash }, kept: kept + match.offset };
}
