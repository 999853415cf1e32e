/**
 * Limits an app gives (a partial object) filled in from their defaults and checked: each one a
 * positive finite number, and a whole one where it counts things. Shared by the mDNS engine's
 * and wide-area DNS-SD's limits.
 */
import { PeerlinkError } from '../errors.js';

/** ERR_INVALID_ARGUMENT for a limit that is not a positive number (or not an integer where `integers` says so); unknown keys are ignored. */
export function fillLimits<T extends object>(defaults: Readonly<T>, given: Partial<T> | undefined, what: string, integers: ReadonlySet<keyof T> = new Set()): T {
  const out = { ...defaults } as T;
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!(k in defaults) || v === undefined) continue;
    const whole = integers.has(k as keyof T);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (whole && !Number.isInteger(v)))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${what} ${k} must be a positive ${whole ? 'integer' : 'number'}, got ${String(v)}`);
    (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
