/**
 * Folders as one transfer: the manifest (what the folder holds), built by the sender from a
 * walk that never follows a symlink, and judged by the receiver before anything is written.
 *
 * Every path component is judged like a resource name (resource-name.ts): no `..`, no
 * separators, no invisible or control characters, nothing hidden. Paths are relative to the
 * folder, joined with `/`. The receiver bounds the manifest's bytes, entries and depth
 * (budgets.ts: folderManifestBytes, folderEntries, folderDepth) and checks that its counts
 * and total agree with the header, so a manifest that lies is refused before a byte is saved.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PeerlinkError } from '../errors.js';
import { describe, resourceNameProblem } from './resource-name.js';
import { MAX_RESOURCE_SIZE } from './resource-wire.js';

/**
 * HELLO capability bit: this peer understands folder offers. A receiver that predates folders
 * cannot parse the offer and never answers it, so a sender checks this first and fails at once
 * (ERR_RESOURCE_UNSUPPORTED) rather than after its whole acceptTimeout.
 */
export const FOLDERS_CAPABILITY = 1 << 17;

/** A file or directory of the folder; `path` is relative, components joined with `/`. */
export interface FolderEntry {
  kind: 'file' | 'dir';
  path: string;
  /** Bytes (files; 0 for directories). */
  size: number;
  /** Permission bits kept (0o777 at most: setuid, setgid and sticky are dropped). */
  mode: number;
  /** Modification time, ms since the epoch (files). */
  mtimeMs: number;
}

/** Something the sender left out: a symlink (never followed), a special file, or an unportable name. */
export interface SkippedEntry {
  path: string;
  why: 'symlink' | 'special' | 'name';
}

export interface FolderManifest {
  entries: FolderEntry[];
  skipped: SkippedEntry[];
  files: number;
  dirs: number;
  size: number;
}

/** The permission bits a received file keeps: rwx for user, group, other; never setuid, setgid, sticky. */
export const KEPT_MODE_BITS = 0o777;

export interface FolderLimits {
  entries: number;
  manifestBytes: number;
  depth: number;
}

/**
 * Walks `root` (depth first, names sorted, so the order is stable) with lstat only: a symlink
 * is reported as skipped, never followed; so is anything that is not a file or directory, and
 * any name the receiver would refuse.
 */
export async function walkFolder(root: string, signal?: AbortSignal): Promise<FolderManifest> {
  const entries: FolderEntry[] = [];
  const skipped: SkippedEntry[] = [];
  let size = 0;
  let files = 0;
  let dirs = 0;
  const walk = async (abs: string, rel: string): Promise<void> => {
    if (signal?.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
    // Synchronous calls, one directory at a time (then the event loop runs): an lstat on a cached
    // inode takes microseconds, a hop through the thread pool per entry far more on a busy machine.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const names = readdirSync(abs).sort();
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const child = join(abs, name);
      const st = lstatSync(child);
      if (st.isSymbolicLink()) {
        skipped.push({ path, why: 'symlink' });
        continue;
      }
      if (!st.isFile() && !st.isDirectory()) {
        skipped.push({ path, why: 'special' });
        continue;
      }
      if (resourceNameProblem(name) !== null) {
        skipped.push({ path, why: 'name' });
        continue;
      }
      if (st.isDirectory()) {
        entries.push({ kind: 'dir', path, size: 0, mode: st.mode & KEPT_MODE_BITS, mtimeMs: Math.trunc(st.mtimeMs) });
        dirs++;
        await walk(child, path);
      } else {
        entries.push({ kind: 'file', path, size: st.size, mode: st.mode & KEPT_MODE_BITS, mtimeMs: Math.trunc(st.mtimeMs) });
        files++;
        size += st.size;
      }
    }
  };
  try {
    await walk(root, '');
  } catch (err) {
    if (err instanceof PeerlinkError) throw err;
    throw new PeerlinkError('ERR_RESOURCE_SOURCE', `${root}: cannot read the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
  return { entries, skipped, files, dirs, size };
}

/** The manifest on the wire: `{e: [[kind, path, size, mode, mtimeMs]…], s: [[path, why]…]}` as UTF-8 JSON. */
export function encodeManifest(m: FolderManifest): Buffer {
  return Buffer.from(
    JSON.stringify({
      e: m.entries.map((e) => [e.kind === 'dir' ? 'd' : 'f', e.path, e.size, e.mode, e.mtimeMs]),
      s: m.skipped.map((s) => [s.path, s.why]),
    }),
    'utf8',
  );
}

function refused(what: string): PeerlinkError {
  return new PeerlinkError('ERR_RESOURCE_NAME', `folder manifest refused: ${what}`);
}

/** Why a relative path is refused (null: acceptable): every component a valid resource name, depth bounded. */
export function folderPathProblem(path: unknown, maxDepth: number): string | null {
  if (typeof path !== 'string' || path.length === 0) return 'an empty path';
  const parts = path.split('/');
  if (parts.length > maxDepth) return `${describe(path)} is deeper than ${maxDepth} levels`;
  for (const part of parts) {
    const p = resourceNameProblem(part);
    if (p !== null) return `${describe(path)}: component ${describe(part)} refused (${p})`;
  }
  return null;
}

/**
 * Judges a received manifest against the header's counts and total and the receiver's limits.
 * Throws ERR_RESOURCE_NAME for a refused path, ERR_PROTOCOL for a malformed or lying manifest.
 */
export function parseManifest(bytes: Buffer, header: { files: number; dirs: number; size: number }, limits: FolderLimits): FolderManifest {
  const lie = (what: string): PeerlinkError => new PeerlinkError('ERR_PROTOCOL', `folder manifest: ${what}`);
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw lie('not JSON');
  }
  const o = v as { e?: unknown; s?: unknown };
  if (typeof v !== 'object' || v === null || !Array.isArray(o.e) || !(o.s === undefined || Array.isArray(o.s))) throw lie('malformed');
  const rawSkipped = (o.s ?? []) as unknown[];
  if (o.e.length + rawSkipped.length > limits.entries) throw lie(`more than ${limits.entries} entries`);
  const entries: FolderEntry[] = [];
  const seen = new Set<string>();
  const dirsSeen = new Set<string>();
  let files = 0;
  let dirs = 0;
  let size = 0;
  for (const raw of o.e as unknown[]) {
    if (!Array.isArray(raw) || raw.length !== 5) throw lie('malformed entry');
    const [k, path, sz, mode, mtime] = raw as unknown[];
    if ((k !== 'f' && k !== 'd') || typeof path !== 'string') throw lie('malformed entry');
    if (!(typeof sz === 'number' && Number.isSafeInteger(sz) && sz >= 0 && sz <= MAX_RESOURCE_SIZE)) throw lie('malformed size');
    if (!(typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)) throw lie('malformed mode');
    if (!(typeof mtime === 'number' && Number.isFinite(mtime) && Math.abs(mtime) < 8.64e15)) throw lie('malformed time');
    const problem = folderPathProblem(path, limits.depth);
    if (problem !== null) throw refused(problem);
    // The same path twice (or differing only in case: one file on macOS and Windows) would overwrite.
    const key = path.toLowerCase();
    if (seen.has(key)) throw refused(`${describe(path)} appears twice`);
    seen.add(key);
    // A parent is listed before its children, as a directory: nothing is made implicitly.
    const slash = path.lastIndexOf('/');
    if (slash >= 0 && !dirsSeen.has(path.slice(0, slash).toLowerCase())) throw lie(`${describe(path)} comes before its directory`);
    if (k === 'd') {
      if (sz !== 0) throw lie('a directory with a size');
      dirsSeen.add(key);
      dirs++;
    } else {
      files++;
      size += sz;
    }
    entries.push({ kind: k === 'd' ? 'dir' : 'file', path, size: sz, mode: mode & KEPT_MODE_BITS, mtimeMs: mtime });
  }
  if (files !== header.files || dirs !== header.dirs || size !== header.size)
    throw lie(`it lists ${files} files, ${dirs} directories and ${size} bytes; the offer said ${header.files}, ${header.dirs} and ${header.size}`);
  const skipped: SkippedEntry[] = [];
  for (const raw of rawSkipped) {
    if (!Array.isArray(raw) || raw.length !== 2 || typeof raw[0] !== 'string' || !['symlink', 'special', 'name'].includes(raw[1] as string)) throw lie('malformed skipped entry');
    // Only ever printed: kept short, shown escaped (describe) by whoever prints it.
    skipped.push({ path: (raw[0] as string).slice(0, 4096), why: raw[1] as SkippedEntry['why'] });
  }
  return { entries, skipped, files, dirs, size };
}
