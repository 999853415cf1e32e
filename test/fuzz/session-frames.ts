/**
 * Random and mutated session frames for fuzzing, built by hand from the byte layouts in
 * docs/session.md (not with the session's codec, so a codec bug cannot shape its own test
 * input). Deterministic for a seed, so a failure can be replayed.
 *
 * Kinds: 'valid' (well-formed frames of every type with random field values, which a live
 * connection accepts), 'random' (random bytes after a known or random type byte), 'flip'
 * (a valid frame with bytes changed), 'truncate', 'extend' (bytes appended), 'length' (a
 * length field rewritten: str8/str16/u32 lengths, batch lengths).
 */
import { hello, ping, data, streamOffer, streamBind, welcome } from '../adversarial/harness.js';

export type FuzzKind = 'valid' | 'random' | 'flip' | 'truncate' | 'extend' | 'length';

/** xorshift32: small, fast, seedable. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 1;
  }
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#s = x;
    return x;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
}

const NAMES = ['a', 'photo.jpg', 'x'.repeat(63), '🐈', 'a\u0000b', '\u200b', '', 'ü'.repeat(40)];

function bye(r: Rng): Buffer {
  const text = Buffer.from(r.pick(NAMES), 'utf8');
  return Buffer.concat([Buffer.from([0x03, r.int(12), text.length & 0xff]), text]);
}

function dataBatch(r: Rng): Buffer {
  const parts: Buffer[] = [Buffer.from([0x09])];
  const n = 1 + r.int(8);
  for (let i = 0; i < n; i++) {
    const p = r.bytes(r.int(200));
    const h = Buffer.alloc(4);
    h.writeUInt32BE(p.length);
    parts.push(h, p);
  }
  return Buffer.concat(parts);
}

function streamReject(r: Rng): Buffer {
  return Buffer.concat([Buffer.from([0x08]), r.bytes(16), Buffer.from([r.int(12)])]);
}

/** A well-formed frame of a random type, with random field values. */
export function validFrame(r: Rng): Buffer {
  switch (r.int(11)) {
    case 0:
      return hello({ peerId: r.bytes(16), nonce: r.bytes(16), role: r.pick([0, 1, 2] as const), capabilities: r.u32(), maxMessageSize: r.u32(), listenPort: r.int(65536), lastGeneration: r.u32(), displayName: r.pick(NAMES.filter((n) => n.length > 0)), instanceName: r.pick(NAMES) });
    case 1:
      return welcome(1 + r.int(0xfffffffe));
    case 2:
      return bye(r);
    case 3:
      return ping(r.u32(), r.pick([0x04, 0x05] as const));
    case 4:
      return data(r.bytes(r.int(300)));
    case 5:
      return streamOffer({ token: r.bytes(16), kind: r.int(4), dialBack: r.int(2) === 1, name: r.pick(NAMES), meta: r.bytes(r.int(64)) });
    case 6:
      return streamReject(r);
    case 7:
      return dataBatch(r);
    case 8:
      return streamBind(r.bytes(16), r.bytes(16));
    case 9:
      // the extension range (resources and later features), unknown types
      return Buffer.concat([Buffer.from([0x40 + r.int(0x40)]), r.bytes(r.int(100))]);
    default:
      return Buffer.concat([Buffer.from([r.pick([0x00, 0x0a, 0x1f, 0x22, 0x2f, 0x80, 0xff])]), r.bytes(r.int(40))]);
  }
}

/** Rewrites a plausible length field (a byte or u16/u32 at a random offset) with an extreme value. */
function rewriteLength(r: Rng, f: Buffer): Buffer {
  const b = Buffer.from(f);
  if (b.length < 2) return b;
  const at = 1 + r.int(b.length - 1);
  const v = r.pick([0, 1, 0x7f, 0x80, 0xff, 0xffff, 0xffffffff, b.length, b.length + 1]);
  if (at + 4 <= b.length && r.int(2) === 0) b.writeUInt32BE(v >>> 0, at);
  else if (at + 2 <= b.length && r.int(2) === 0) b.writeUInt16BE(v & 0xffff, at);
  else b[at] = v & 0xff;
  return b;
}

export function fuzzFrame(r: Rng): [Buffer, FuzzKind] {
  const base = validFrame(r);
  switch (r.int(8)) {
    case 0:
    case 1:
      return [base, 'valid'];
    case 2: {
      const t = r.int(3) === 0 ? r.int(256) : r.pick([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x20, 0x21]);
      return [Buffer.concat([Buffer.from([t]), r.bytes(r.int(120))]), 'random'];
    }
    case 3: {
      const b = Buffer.from(base);
      const n = 1 + r.int(4);
      for (let i = 0; i < n; i++) b[r.int(b.length)] = r.u32() & 0xff;
      return [b, 'flip'];
    }
    case 4:
      return [base.subarray(0, r.int(base.length)), 'truncate'];
    case 5:
      return [Buffer.concat([base, r.bytes(1 + r.int(32))]), 'extend'];
    default:
      return [rewriteLength(r, base), 'length'];
  }
}

/** How many frames a fuzz run uses: PEERLINK_FUZZ_FRAMES, or `dflt` (npm run fuzz sets a million). */
export function fuzzCount(dflt: number): number {
  const v = Number(process.env.PEERLINK_FUZZ_FRAMES);
  return Number.isInteger(v) && v > 0 ? v : dflt;
}
