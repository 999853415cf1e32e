/**
 * TSIG (RFC 8945): HMAC signatures on DNS messages with a key shared with the server. We
 * sign UPDATE requests and verify the server's signed responses; the key is read from
 * BIND's key-file format (what `tsig-keygen` writes) and never printed: `TsigKey` has a
 * toJSON / inspect that hides the secret.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { PeerlinkError } from '../../errors.js';
import { labelsToBuffers } from '../codec/name.js';

export const RRTYPE_TSIG = 250;
const CLASS_ANY = 255;
/** RFC 8945 §5.2.3 recommends 300 s. */
export const DEFAULT_FUDGE = 300;
/** A key file is a few hundred bytes; anything past this is not one. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** TSIG error codes (RFC 8945 §3, IANA "DNS RCODEs"). */
export const TsigError = { BADSIG: 16, BADKEY: 17, BADTIME: 18, BADTRUNC: 22 } as const;

const ALGORITHMS = {
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
  'hmac-sha1': 'sha1',
} as const;
export type TsigAlgorithm = keyof typeof ALGORITHMS;

export class TsigKey {
  readonly #secret: Buffer;

  constructor(
    /** The key's name, as the server knows it (`peerlink-key`). */
    readonly name: string,
    readonly algorithm: TsigAlgorithm,
    secret: Buffer,
  ) {
    if (secret.length === 0) throw new PeerlinkError('ERR_TSIG_BAD_KEY_FILE', `TSIG key "${name}" has an empty secret`);
    labelsToBuffers(name);
    this.#secret = Buffer.from(secret);
  }

  /** @internal */
  hmac(data: readonly Buffer[]): Buffer {
    const h = createHmac(ALGORITHMS[this.algorithm], this.#secret);
    for (const d of data) h.update(d);
    return h.digest();
  }

  toJSON(): { name: string; algorithm: string } {
    return { name: this.name, algorithm: this.algorithm };
  }

  [inspect.custom](): string {
    return `TsigKey { name: '${this.name}', algorithm: '${this.algorithm}', secret: <hidden> }`;
  }
}

function badKeyFile(why: string): PeerlinkError {
  return new PeerlinkError('ERR_TSIG_BAD_KEY_FILE', `${why}; expected BIND's key file format: key "NAME" { algorithm hmac-sha256; secret "BASE64"; }; (as tsig-keygen writes it)`);
}

function algorithmOf(s: string): TsigAlgorithm {
  const a = s.toLowerCase().replace(/\.$/, '');
  if (a in ALGORITHMS) return a as TsigAlgorithm;
  throw badKeyFile(`unsupported TSIG algorithm "${s}" (supported: ${Object.keys(ALGORITHMS).join(', ')})`);
}

function decodeSecret(b64: string): Buffer {
  const clean = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) throw badKeyFile('the secret is not base64');
  return Buffer.from(clean, 'base64');
}

/** Parses the first `key` statement of a BIND key file (comments allowed). */
export function parseKeyFile(text: string): TsigKey {
  if (text.length > MAX_KEY_FILE_BYTES) throw badKeyFile('the key file is too large');
  // comments (/* */, //, #) outside quoted strings: a base64 secret may contain "//"
  const stripped = text.replace(/("[^"]*")|\/\*[\s\S]*?\*\/|(?:#|\/\/)[^\n]*/g, (_all, quoted: string | undefined) => quoted ?? ' ');
  const m = /\bkey\s+("([^"]+)"|([^\s{]+))\s*\{([^}]*)\}\s*;/.exec(stripped);
  if (!m) throw badKeyFile('no key statement found');
  const name = (m[2] ?? m[3] ?? '').replace(/\.$/, '');
  const body = m[4] ?? '';
  const alg = /\balgorithm\s+"?([A-Za-z0-9.-]+)"?\s*;/.exec(body);
  const secret = /\bsecret\s+"([^"]*)"\s*;/.exec(body);
  if (!alg?.[1]) throw badKeyFile(`key "${name}" has no algorithm`);
  if (!secret?.[1]) throw badKeyFile(`key "${name}" has no secret`);
  try {
    return new TsigKey(name, algorithmOf(alg[1]), decodeSecret(secret[1]));
  } catch (err) {
    if (err instanceof PeerlinkError && err.code === 'ERR_INVALID_ARGUMENT') throw badKeyFile(`invalid key name "${name}"`);
    throw err;
  }
}

/** `[ALGORITHM:]NAME:BASE64` (dig -y's form), for the PEERLINK_TSIG environment variable. */
export function parseKeySpec(spec: string): TsigKey {
  const parts = spec.trim().split(':');
  if (parts.length === 2) return new TsigKey(parts[0] as string, 'hmac-sha256', decodeSecret(parts[1] as string));
  if (parts.length === 3) return new TsigKey(parts[1] as string, algorithmOf(parts[0] as string), decodeSecret(parts[2] as string));
  throw badKeyFile('PEERLINK_TSIG must be [ALGORITHM:]NAME:BASE64');
}

export function readKeyFile(path: string): TsigKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PeerlinkError('ERR_TSIG_BAD_KEY_FILE', `cannot read the TSIG key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseKeyFile(text);
}

/** Canonical wire form (RFC 8945 §4.3.3: lower case, uncompressed). */
function canonicalName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const l of labelsToBuffers(name)) {
    const lower = Buffer.from(l);
    for (let i = 0; i < lower.length; i++) {
      const c = lower[i] as number;
      if (c >= 0x41 && c <= 0x5a) lower[i] = c + 0x20;
    }
    parts.push(Buffer.from([lower.length]), lower);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}

function u48(v: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(Math.max(0, Math.floor(v)), 0, 6);
  return b;
}

/** TSIG variables (RFC 8945 §4.3.3) after the message in the MAC input. */
function variables(key: TsigKey, timeSigned: number, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([canonicalName(key.name), u16(CLASS_ANY), Buffer.alloc(4), canonicalName(key.algorithm), u48(timeSigned), u16(fudge), u16(error), u16(other.length), other]);
}

export interface SignOptions {
  /** Seconds since the epoch (injected for tests). */
  now: number;
  fudge?: number;
}

/**
 * Appends a TSIG record to `message` (a complete DNS message, unsigned). Returns the signed
 * message and its MAC, which the response's MAC covers (RFC 8945 §5.3).
 */
export function signMessage(message: Buffer, key: TsigKey, opts: SignOptions): { message: Buffer; mac: Buffer } {
  return sign(message, key, opts, []);
}

/** A server's side (for tests and tools): signs a response to a request whose MAC was `requestMac` (RFC 8945 §5.3.2). */
export function signResponse(message: Buffer, key: TsigKey, requestMac: Buffer, opts: SignOptions): Buffer {
  return sign(message, key, opts, [u16(requestMac.length), requestMac]).message;
}

function sign(message: Buffer, key: TsigKey, opts: SignOptions, prefix: Buffer[]): { message: Buffer; mac: Buffer } {
  const fudge = opts.fudge ?? DEFAULT_FUDGE;
  const time = Math.floor(opts.now);
  const mac = key.hmac([...prefix, message, variables(key, time, fudge, 0, Buffer.alloc(0))]);
  const rdata = Buffer.concat([canonicalName(key.algorithm), u48(time), u16(fudge), u16(mac.length), mac, u16(message.readUInt16BE(0)), u16(0), u16(0)]);
  const rr = Buffer.concat([canonicalName(key.name), u16(RRTYPE_TSIG), u16(CLASS_ANY), Buffer.alloc(4), u16(rdata.length), rdata]);
  const out = Buffer.concat([message, rr]);
  out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
  return { message: out, mac };
}

function skipName(buf: Buffer, off: number): number {
  let pos = off;
  for (let hops = 0; hops < 128; hops++) {
    if (pos >= buf.length) break;
    const len = buf[pos] as number;
    if (len === 0) return pos + 1;
    if ((len & 0xc0) === 0xc0) return pos + 2;
    if (len & 0xc0) break;
    pos += 1 + len;
  }
  throw new PeerlinkError('ERR_MALFORMED_PACKET', 'malformed DNS packet: bad name');
}

function readUncompressedName(buf: Buffer, off: number, end: number): [string, number] {
  const labels: string[] = [];
  let pos = off;
  for (let i = 0; i < 128 && pos < end; i++) {
    const len = buf[pos] as number;
    if (len === 0) return [labels.join('.').toLowerCase(), pos + 1];
    if (len > 63 || pos + 1 + len > end) break;
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new PeerlinkError('ERR_MALFORMED_PACKET', 'malformed DNS packet: bad TSIG record');
}

/** Offset of the last record of a (structurally valid, already decoded) message. */
function lastRecordOffset(buf: Buffer): number {
  const qd = buf.readUInt16BE(4);
  const rr = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  let last = -1;
  for (let i = 0; i < rr; i++) {
    last = off;
    const p = skipName(buf, off);
    if (p + 10 > buf.length) throw new PeerlinkError('ERR_MALFORMED_PACKET', 'malformed DNS packet: truncated record');
    off = p + 10 + buf.readUInt16BE(p + 8);
  }
  return last;
}

export interface TsigResult {
  /** The TSIG error field (0: none); a server that could not check our key answers BADKEY/BADSIG unsigned. */
  error: number;
  /** True when the MAC was present and verified. */
  verified: boolean;
}

/**
 * Verifies the TSIG on a response to a request we signed with `requestMac` (RFC 8945
 * §5.3.1). A response carrying a TSIG error with an empty MAC is reported (`verified:
 * false`) so the caller can say "the server does not accept this key"; anything else that
 * does not verify throws ERR_TSIG_VERIFY.
 */
export function verifyResponse(buf: Buffer, key: TsigKey, requestMac: Buffer | undefined, opts: SignOptions): TsigResult {
  const fail = (why: string): PeerlinkError => new PeerlinkError('ERR_TSIG_VERIFY', `the DNS server's response is not signed with our key: ${why}`);
  if (buf.length < 12 || buf.readUInt16BE(10) === 0) throw fail('no TSIG record');
  const start = lastRecordOffset(buf);
  const [name, p] = readUncompressedName(buf, start, buf.length);
  if (buf.readUInt16BE(p) !== RRTYPE_TSIG) throw fail('no TSIG record');
  // RFC 8945 §4.2: class ANY, TTL 0 (the MAC covers neither field: check them here)
  if (buf.readUInt16BE(p + 2) !== CLASS_ANY || buf.readUInt32BE(p + 4) !== 0) throw fail('TSIG record with a wrong class or TTL');
  if (name !== key.name.toLowerCase()) throw fail(`signed with key "${name}"`);
  const rdStart = p + 10;
  const rdEnd = rdStart + buf.readUInt16BE(p + 8);
  if (rdEnd > buf.length) throw fail('truncated TSIG record');
  const [alg, q] = readUncompressedName(buf, rdStart, rdEnd);
  if (q + 10 > rdEnd) throw fail('truncated TSIG record');
  const timeSigned = buf.readUIntBE(q, 6);
  const fudge = buf.readUInt16BE(q + 6);
  const macLen = buf.readUInt16BE(q + 8);
  if (q + 10 + macLen + 6 > rdEnd) throw fail('truncated TSIG record');
  const mac = buf.subarray(q + 10, q + 10 + macLen);
  const r = q + 10 + macLen;
  const originalId = buf.readUInt16BE(r);
  const error = buf.readUInt16BE(r + 2);
  const otherLen = buf.readUInt16BE(r + 4);
  if (r + 6 + otherLen !== rdEnd) throw fail('TSIG record length mismatch');
  const other = buf.subarray(r + 6, rdEnd);
  if (alg !== key.algorithm) throw fail(`algorithm ${alg}`);
  if (macLen === 0 && error !== 0) return { error, verified: false };
  const msg = Buffer.from(buf.subarray(0, start));
  msg.writeUInt16BE(originalId, 0);
  msg.writeUInt16BE(msg.readUInt16BE(10) - 1, 10);
  const prefix = requestMac ? [u16(requestMac.length), requestMac] : [];
  const expected = key.hmac([...prefix, msg, variables(key, timeSigned, fudge, error, other)]);
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw fail('wrong MAC');
  if (Math.abs(Math.floor(opts.now) - timeSigned) > fudge) throw fail(`time signed is ${timeSigned - Math.floor(opts.now)} s from ours (fudge ${fudge} s)`);
  return { error, verified: true };
}

/** Verifies a signed request (what a server does): for tests and for our own codec checks. */
export function verifyRequest(buf: Buffer, key: TsigKey, opts: SignOptions): TsigResult {
  return verifyResponse(buf, key, undefined, opts);
}
