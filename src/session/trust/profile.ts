/**
 * What an identity belongs to: a *profile* — one identity directory (key, certificate, known
 * peers) used by one process at a time. A user's profiles live under one base directory
 * (`$XDG_CONFIG_HOME/peerlink`, else `~/.config/peerlink`): `identity`, then `identity-2`,
 * `identity-3`… A process takes the first profile no live process holds, so two terminals of
 * one user on one host get two identities (two peer ids) and meet each other without flags,
 * and each keeps what it learned: the first terminal is `identity` again next time.
 *
 * Two processes must never share one identity: they would have the same peer id, so they
 * could not meet each other, and every other peer would take them for one peer restarting.
 * A profile is held with a lock file (`lock`, the holder's pid); a lock whose process is gone
 * is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PeerlinkError } from '../../errors.js';

/** Profiles tried under the base directory before giving up. */
export const MAX_PROFILES = 32;
const LOCK_FILE = 'lock';

/** The per-user base directory for profiles. */
export function defaultIdentityBase(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.config');
  return join(base, 'peerlink');
}

/** The directory of profile number `n` (1-based) under `base`. */
export function profileDir(base: string, n: number): string {
  return join(base, n === 1 ? 'identity' : `identity-${n}`);
}

export interface ProfileLock {
  dir: string;
  /** Gives the profile up (the lock file is removed). Also done at process exit. */
  release(): void;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid holding `dir`, if a live process does. */
export function profileHolder(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, LOCK_FILE), 'utf8').trim());
    return alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes `dir` for this process; undefined when a live process holds it. */
export function tryLockProfile(dir: string): ProfileLock | undefined {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (profileHolder(dir) !== undefined) return undefined;
      // Stale: its process is gone.
      try {
        unlinkSync(file);
      } catch {
        /* someone else took it over first: try again */
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off('exit', release);
      try {
        if (Number(readFileSync(file, 'utf8').trim()) === process.pid) unlinkSync(file);
      } catch {
        /* already gone */
      }
    };
    process.on('exit', release);
    return { dir, release };
  }
  return undefined;
}

/** Takes `dir`, or fails with ERR_IDENTITY_IN_USE naming the process that holds it. */
export function lockProfile(dir: string): ProfileLock {
  const lock = tryLockProfile(dir);
  if (lock) return lock;
  throw new PeerlinkError('ERR_IDENTITY_IN_USE', `the identity in ${dir} is in use by process ${profileHolder(dir) ?? '?'}; two processes with one identity would have one peer id — give another --identity DIR, or leave it out to use a free profile`);
}

/** The first free profile under `base` (default: the per-user base directory). */
export function lockFreeProfile(base: string = defaultIdentityBase()): ProfileLock {
  for (let n = 1; n <= MAX_PROFILES; n++) {
    const lock = tryLockProfile(profileDir(base, n));
    if (lock) return lock;
  }
  throw new PeerlinkError('ERR_IDENTITY_IN_USE', `all ${MAX_PROFILES} identity profiles under ${base} are in use`);
}
