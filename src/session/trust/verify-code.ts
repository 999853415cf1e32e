/**
 * First-contact verification code: six digits both people compare, derived from both public
 * keys, both sides' random values and the TLS session (an RFC 5705 / RFC 8446 §7.5 exporter
 * value), after a commitment step — each side sends SHA-256 of its random value before either
 * reveals it (the shape of Bluetooth's numeric comparison, Core Spec Vol 3 Part H §2.3.5.6.2,
 * and Nearby's UKEY2). A machine in the middle terminates TLS towards both sides, so the
 * exporter values and keys on its two links differ; it must commit to its value on one link
 * before it learns the other side's, so it cannot steer the two codes together: one guess
 * (probability 10⁻⁶) per attempt, and attempts are budgeted (docs/security.md "Trust").
 */
import { createHash, randomBytes } from 'node:crypto';
import { comparePeerIdBytes } from '../peer-id.js';

export const EXPORTER_LABEL = 'EXPORTER-peerlink-verify-v1';
export const EXPORTER_BYTES = 32;
export const NONCE_BYTES = 32;

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** What a side sends first: the hash of its random value. */
export function commitmentOf(nonce: Buffer): Buffer {
  return createHash('sha256').update('peerlink-verify-commit-v1').update(nonce).digest();
}

export interface CodeInputs {
  exporter: Buffer;
  local: { id: Buffer; spki: Buffer; nonce: Buffer };
  remote: { id: Buffer; spki: Buffer; nonce: Buffer };
}

function lengthPrefixed(h: ReturnType<typeof createHash>, b: Buffer): void {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  h.update(len).update(b);
}

/** The six-digit code; both sides compute the same one (inputs ordered by peer id). */
export function verificationCode(c: CodeInputs): string {
  const [lo, hi] = comparePeerIdBytes(c.local.id, c.remote.id) < 0 ? [c.local, c.remote] : [c.remote, c.local];
  const h = createHash('sha256').update('peerlink-verify-code-v1');
  lengthPrefixed(h, c.exporter);
  for (const side of [lo, hi]) {
    lengthPrefixed(h, side.spki);
    lengthPrefixed(h, side.nonce);
  }
  // 2^32 mod 10^6 bias is < 0.03 %: negligible next to the 10^-6 guess.
  return String(h.digest().readUInt32BE(0) % 1_000_000).padStart(6, '0');
}
