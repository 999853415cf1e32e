/**
 * TXT record data per RFC 6763 §6: `key=value` strings of at most 255 bytes, keys of
 * printable US-ASCII without '=', compared case-insensitively; the first occurrence of a
 * key wins; `key` alone is a boolean attribute; an empty record is one zero byte.
 */
import { PeerlinkError } from '../errors.js';

/** What callers give: a value, `true`/`null` for a boolean attribute; `false`/undefined omit the key. */
export type TxtInput = Record<string, string | Buffer | Uint8Array | number | boolean | null | undefined>;

/** A decoded TXT entry, in wire order, keys as received. `value` null = key without '='. */
export interface TxtEntry {
  key: string;
  value: Buffer | null;
}

const MAX_STRING = 255;
/** RFC 6763 §6.2 suggests keeping the whole record under 1300 bytes; we refuse past 8900 (one packet). */
const MAX_TXT_BYTES = 8900;

function invalid(msg: string): PeerlinkError {
  return new PeerlinkError('ERR_INVALID_TXT', msg);
}

export function validateTxtKey(key: string): void {
  if (key.length === 0) throw invalid('TXT key must not be empty');
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x3d) throw invalid(`TXT key "${key}" must be printable US-ASCII without "="`);
  }
}

/** Encodes caller TXT data into the strings of a TXT record. */
export function encodeTxt(txt: TxtInput | undefined): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let total = 0;
  for (const [key, value] of Object.entries(txt ?? {})) {
    if (value === undefined || value === false) continue;
    validateTxtKey(key);
    const lower = key.toLowerCase();
    if (seen.has(lower)) throw invalid(`TXT key "${key}" appears twice (keys are case-insensitive)`);
    seen.add(lower);
    let s: Buffer;
    if (value === true || value === null) s = Buffer.from(key, 'ascii');
    else {
      const v = typeof value === 'string' || typeof value === 'number' ? Buffer.from(String(value), 'utf8') : Buffer.from(value);
      s = Buffer.concat([Buffer.from(`${key}=`, 'ascii'), v]);
    }
    if (s.length > MAX_STRING) throw invalid(`TXT entry "${key}" is ${s.length} bytes; at most 255 are allowed`);
    total += s.length + 1;
    out.push(s);
  }
  if (total > MAX_TXT_BYTES) throw invalid(`TXT record is ${total} bytes; keep it under 1300 (at most ${MAX_TXT_BYTES})`);
  // an empty TXT record is a single empty string, i.e. one zero byte (RFC 6763 §6.1)
  return out.length === 0 ? [Buffer.alloc(0)] : out;
}

/** Parses TXT strings leniently, as RFC 6763 §6.4 asks of receivers. */
export function decodeTxt(strings: readonly Buffer[]): TxtEntry[] {
  const out: TxtEntry[] = [];
  const seen = new Set<string>();
  for (const s of strings) {
    if (s.length === 0) continue;
    const eq = s.indexOf(0x3d);
    // a string starting with '=' has no key and is ignored
    if (eq === 0) continue;
    const key = s.toString('latin1', 0, eq < 0 ? s.length : eq);
    const lower = key.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    out.push({ key, value: eq < 0 ? null : Buffer.from(s.subarray(eq + 1)) });
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * TXT entries as JSON-friendly strings: UTF-8 values as text, `null` for a key without
 * '=', other bytes base64-encoded with the key listed in `binary`.
 */
export function txtToStrings(entries: readonly TxtEntry[]): { txt: Record<string, string | null>; binary: string[] } {
  const txt: Record<string, string | null> = {};
  const binary: string[] = [];
  for (const { key, value } of entries) {
    if (value === null) {
      txt[key] = null;
      continue;
    }
    try {
      txt[key] = utf8.decode(value);
    } catch {
      txt[key] = value.toString('base64');
      binary.push(key);
    }
  }
  return { txt, binary };
}
