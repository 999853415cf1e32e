/**
 * Partial folders as the download directory's store sees them (docs/resources.md "Folders"):
 * an interrupted resumable folder's staging directory (`.peerlink-folder-partial-<24 hex>`,
 * resource-folder-resume.ts) holds, beside its files and journal, a record
 * (`.peerlink-folder.json`: {v, name, size, createdAt}, a hidden name no manifest path can take)
 * so it can be listed and discarded by name. Its bytes on disk count against the quota; how
 * many there are is capped (MAX_PARTIAL_FOLDERS, resource-store.ts), so a sender that
 * interrupts folder after folder cannot fill the disk.
 */
import { constants } from 'node:fs';
import { join } from 'node:path';
import { FOLDER_PARTIAL_PATTERN, JOURNAL_NAME } from './resource-folder-resume.js';
import { PARTIAL_MAX_AGE_MS, readRecordText, type PartialResource } from './resource-partial.js';
import { resourceNameProblem } from './resource-name.js';
import { MAX_RESOURCE_SIZE } from './resource-wire.js';
import { fsPromises } from '../lazy-builtins.js';

export const FOLDER_RECORD_NAME = '.peerlink-folder.json';
/** Entries looked at when counting a staging directory's bytes: far above any folder we accept, and a bound on the walk. */
const MAX_WALK_ENTRIES = 1_000_000;

export interface FolderPartialRecord {
  v: 1;
  name: string;
  size: number;
  createdAt: string;
}

export async function writeFolderRecord(staging: string, record: FolderPartialRecord): Promise<void> {
  const fh = await fsPromises().open(join(staging, FOLDER_RECORD_NAME), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_NOFOLLOW ?? 0), 0o600);
  try {
    await fh.writeFile(JSON.stringify(record));
  } finally {
    await fh.close();
  }
}

async function readFolderRecord(staging: string): Promise<FolderPartialRecord | undefined> {
  try {
    const text = await readRecordText(join(staging, FOLDER_RECORD_NAME));
    if (text === undefined) return undefined;
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || o.v !== 1 || typeof o.name !== 'string' || resourceNameProblem(o.name) !== null) return undefined;
    if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0 || o.size > MAX_RESOURCE_SIZE) return undefined;
    return { v: 1, name: o.name, size: o.size, createdAt: typeof o.createdAt === 'string' ? o.createdAt.slice(0, 40) : '' };
  } catch {
    return undefined;
  }
}

/** Bytes of the regular files under `staging` (never following a symlink; bounded in entries). */
export async function stagingBytes(staging: string): Promise<number> {
  let bytes = 0;
  let seen = 0;
  const stack = [staging];
  while (stack.length > 0 && seen < MAX_WALK_ENTRIES) {
    const dir = stack.pop()!;
    const entries = await fsPromises().readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (++seen > MAX_WALK_ENTRIES) break;
      const path = join(dir, e.name);
      if (e.isDirectory()) stack.push(path);
      else if (e.isFile()) bytes += (await fsPromises().lstat(path).catch(() => undefined))?.size ?? 0;
    }
  }
  return bytes;
}

/**
 * The partial folders in `dir` by staging directory name. Removes, on the way, expired ones
 * (journal or directory untouched for PARTIAL_MAX_AGE_MS) — except those in `busy`. One without
 * a record (kept by an earlier version, or a receiver killed before writing it) is listed under
 * its staging directory's name.
 */
export async function scanFolderPartials(dir: string, busy: ReadonlySet<string>, now = Date.now()): Promise<Map<string, PartialResource>> {
  const out = new Map<string, PartialResource>();
  for (const entry of await fsPromises().readdir(dir).catch(() => [] as string[])) {
    if (!FOLDER_PARTIAL_PATTERN.test(entry) || busy.has(entry)) continue;
    const path = join(dir, entry);
    const st = await fsPromises().lstat(path).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const journal = await fsPromises().lstat(join(path, JOURNAL_NAME)).catch(() => undefined);
    const updated = Math.max(st.mtimeMs, journal?.mtimeMs ?? 0);
    if (now - updated > PARTIAL_MAX_AGE_MS) {
      await fsPromises().rm(path, { recursive: true, force: true }).catch(() => undefined);
      continue;
    }
    const record = await readFolderRecord(path);
    const bytes = await stagingBytes(path);
    out.set(entry, {
      kind: 'folder',
      name: record?.name ?? entry,
      size: record?.size ?? bytes,
      bytes,
      sha256: null,
      updatedAt: new Date(updated),
      expiresAt: new Date(updated + PARTIAL_MAX_AGE_MS),
    });
  }
  return out;
}
