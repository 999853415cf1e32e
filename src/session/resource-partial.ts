/**
 * Partial files of interrupted incoming transfers, kept beside the download directory's files
 * so that the same file sent again resumes (docs/resources.md "Resuming").
 *
 * A transfer of `name` with `size` bytes writes to `.peerlink-partial-<key>.part`, described by
 * `.peerlink-partial-<key>.json` ({v, name, size, sha256, createdAt}); `key` is 24 hex digits of
 * SHA-256(name, size). Both are hidden and named so no valid resource name can equal them
 * (names may not start with "."). A file is keyed by name and size, never by the sender's peer
 * id (which a CLI sender draws anew each run): that the bytes are the sender's is proved at
 * resume time (resource-prefix.ts), not assumed. Partials untouched for PARTIAL_MAX_AGE_MS are
 * removed when the directory is prepared or listed.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { resourceNameProblem } from './resource-name.js';
import { MAX_RESOURCE_SIZE } from './resource-wire.js';
import { fsPromises } from '../lazy-builtins.js';

/** Partial files untouched this long are removed (7 days). */
export const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600_000;
const PARTIAL_PREFIX = '.peerlink-partial-';
const PARTIAL_PATTERN = /^\.peerlink-partial-([0-9a-f]{24})\.(part|json)$/;
/** A record is a few hundred bytes; anything larger is not ours. */
const MAX_RECORD_BYTES = 4096;

/** A partial transfer held in the download directory. */
export interface PartialResource {
  /** A single file, or a folder (its staging directory: resource-folder-partial.ts). */
  kind: 'file' | 'folder';
  /** The name it was being sent under. */
  name: string;
  /** Announced size. */
  size: number;
  /** Bytes held on disk (of a folder: its files and the prefix of the file in flight). */
  bytes: number;
  /** The digest the sender announced up front, if it did. */
  sha256: string | null;
  /** When it was last written. */
  updatedAt: Date;
  /** When it will be removed if not resumed. */
  expiresAt: Date;
}

export interface PartialRecord {
  v: 1;
  name: string;
  size: number;
  sha256: string | null;
  createdAt: string;
}

export function partialKey(name: string, size: number): string {
  return createHash('sha256').update(`${name}\0${size}`, 'utf8').digest('hex').slice(0, 24);
}

export function partialDataName(key: string): string {
  return `${PARTIAL_PREFIX}${key}.part`;
}

export function partialRecordName(key: string): string {
  return `${PARTIAL_PREFIX}${key}.json`;
}

export async function writeRecord(dir: string, key: string, record: PartialRecord): Promise<void> {
  // Never through a symlink planted under the record's name.
  const fh = await fsPromises().open(join(dir, partialRecordName(key)), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0), 0o644);
  try {
    await fh.writeFile(JSON.stringify(record));
  } finally {
    await fh.close();
  }
}

/**
 * A small local record file as text: opened without following a symlink, at most
 * MAX_RECORD_BYTES (undefined if longer). Throws if it cannot be opened or read.
 */
export async function readRecordText(path: string): Promise<string | undefined> {
  const fh = await fsPromises().open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  try {
    const buf = Buffer.alloc(MAX_RECORD_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return bytesRead > MAX_RECORD_BYTES ? undefined : buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** The record of `key`, or undefined if it is missing, unreadable or not one of ours (the file is local but checked all the same). */
export async function readRecord(dir: string, key: string): Promise<PartialRecord | undefined> {
  let text: string | undefined;
  try {
    text = await readRecordText(join(dir, partialRecordName(key)));
  } catch {
    return undefined;
  }
  if (text === undefined) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || o.v !== 1 || typeof o.name !== 'string' || resourceNameProblem(o.name) !== null) return undefined;
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0 || o.size > MAX_RESOURCE_SIZE) return undefined;
  if (!(o.sha256 === null || (typeof o.sha256 === 'string' && /^[0-9a-f]{64}$/.test(o.sha256)))) return undefined;
  if (partialKey(o.name, o.size) !== key) return undefined;
  return { v: 1, name: o.name, size: o.size, sha256: o.sha256 as string | null, createdAt: typeof o.createdAt === 'string' ? o.createdAt.slice(0, 40) : '' };
}

export async function removePartial(dir: string, key: string): Promise<void> {
  await fsPromises().unlink(join(dir, partialDataName(key))).catch(() => undefined);
  await fsPromises().unlink(join(dir, partialRecordName(key))).catch(() => undefined);
}

/**
 * The partials in `dir` by key, with their bytes on disk. Removes, on the way, expired ones,
 * records without data and data without a valid record — except keys in `busy` (being written).
 */
export async function scanPartials(dir: string, busy: ReadonlySet<string>, now = Date.now()): Promise<Map<string, PartialResource>> {
  const keys = new Set<string>();
  for (const entry of await fsPromises().readdir(dir).catch(() => [] as string[])) {
    const m = PARTIAL_PATTERN.exec(entry);
    if (m) keys.add(m[1]!);
  }
  const out = new Map<string, PartialResource>();
  for (const key of keys) {
    if (busy.has(key)) continue;
    const st = await fsPromises().lstat(join(dir, partialDataName(key))).catch(() => undefined);
    const record = await readRecord(dir, key);
    if (!st?.isFile() || !record || now - st.mtimeMs > PARTIAL_MAX_AGE_MS) {
      // A symlink or directory under our name is not ours to remove: it is only skipped.
      if (st && !st.isFile()) continue;
      await removePartial(dir, key);
      continue;
    }
    out.set(key, {
      kind: 'file',
      name: record.name,
      size: record.size,
      bytes: Math.min(st.size, record.size),
      sha256: record.sha256,
      updatedAt: new Date(st.mtimeMs),
      expiresAt: new Date(st.mtimeMs + PARTIAL_MAX_AGE_MS),
    });
  }
  return out;
}
