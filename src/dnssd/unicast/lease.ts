/**
 * Leases for registrations in a unicast zone. Neither BIND nor Knot expires records (the
 * RFC 9664 update-lease option is ignored), so each registration carries its own: two TXT
 * keys, `pl-expires=<unix seconds>` and `pl-owner=<token>.<run>`. The registering process
 * moves `pl-expires` forward on every refresh; browsers treat a registration past it as
 * gone, and a browser that holds the zone key deletes it.
 *
 * `<token>` is stable for one service name on one host (machine id, network namespace,
 * host name, type, domain, name), so a restarted process recognises its own leftovers and
 * replaces them instead of renaming around them. `<run>` is random per process: a live
 * twin (same token, other run) that finds itself displaced renames rather than fighting.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { TxtRecord } from '../codec/types.js';
import { decodeTxt } from '../txt.js';

export const LEASE_EXPIRES_KEY = 'pl-expires';
export const LEASE_OWNER_KEY = 'pl-owner';

export interface LeaseInfo {
  expires: number | undefined;
  token: string | undefined;
  run: string | undefined;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function netnsId(): string {
  try {
    return String(statSync('/proc/self/ns/net').ino);
  } catch {
    return '';
  }
}

/** The registration token of a service name on this host. */
export function registrationToken(type: string, domain: string, name: string): string {
  const h = createHash('sha256');
  for (const part of [safeRead('/etc/machine-id'), netnsId(), hostname(), type.toLowerCase(), domain.toLowerCase(), name]) h.update(`${part}\u0000`);
  return h.digest('hex').slice(0, 16);
}

export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

export function leaseOf(txt: TxtRecord | undefined): LeaseInfo {
  const out: LeaseInfo = { expires: undefined, token: undefined, run: undefined };
  if (!txt) return out;
  for (const e of decodeTxt(txt.strings)) {
    const k = e.key.toLowerCase();
    const v = e.value?.toString('utf8');
    if (v === undefined) continue;
    if (k === LEASE_EXPIRES_KEY && out.expires === undefined && /^\d{1,12}$/.test(v)) out.expires = Number(v);
    if (k === LEASE_OWNER_KEY && out.token === undefined) {
      const [token, run] = v.split('.');
      out.token = token;
      out.run = run;
    }
  }
  return out;
}

/** The caller's TXT without our lease keys (what browsers report). */
export function withoutLease(strings: readonly Buffer[]): Buffer[] {
  const kept = strings.filter((s) => {
    const eq = s.indexOf(0x3d);
    const key = (eq < 0 ? s : s.subarray(0, eq)).toString('latin1').toLowerCase();
    return key !== LEASE_EXPIRES_KEY && key !== LEASE_OWNER_KEY;
  });
  return kept.length > 0 ? kept : [Buffer.alloc(0)];
}

export function leaseStrings(expires: number, token: string, run: string): Buffer[] {
  return [Buffer.from(`${LEASE_EXPIRES_KEY}=${Math.floor(expires)}`), Buffer.from(`${LEASE_OWNER_KEY}=${token}.${run}`)];
}
