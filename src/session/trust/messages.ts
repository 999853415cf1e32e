/**
 * The trust messages of a PKI control connection (docs/session.md "Trust"), in the session's
 * extension range (0x60–0x7f, reserved for later session features): sent right after the
 * connection became the peer's (WELCOME), before anything else.
 *
 *   TRUST_COMMIT  0x70  need u8 (1: the sender wants a code compared) · commitment 32 bytes
 *   TRUST_REVEAL  0x71  nonce 32 bytes
 *   TRUST_CONFIRM 0x72  ok u8 (1: the sender's person/app confirmed the code; 0: rejected)
 */
import { PeerlinkError } from '../../errors.js';
import type { ExtensionMessage } from '../protocol/messages.js';
import { NONCE_BYTES } from './verify-code.js';

export const TrustType = { COMMIT: 0x70, REVEAL: 0x71, CONFIRM: 0x72 } as const;

export function isTrustCode(code: number): boolean {
  return code >= TrustType.COMMIT && code <= TrustType.CONFIRM;
}

export type TrustMessage =
  | { kind: 'commit'; need: boolean; commitment: Buffer }
  | { kind: 'reveal'; nonce: Buffer }
  | { kind: 'confirm'; ok: boolean };

export function encodeTrust(m: TrustMessage): ExtensionMessage {
  switch (m.kind) {
    case 'commit':
      return { type: 'extension', code: TrustType.COMMIT, body: Buffer.concat([Buffer.of(m.need ? 1 : 0), m.commitment]) };
    case 'reveal':
      return { type: 'extension', code: TrustType.REVEAL, body: Buffer.from(m.nonce) };
    case 'confirm':
      return { type: 'extension', code: TrustType.CONFIRM, body: Buffer.of(m.ok ? 1 : 0) };
  }
}

/** Decodes a trust message; ERR_PROTOCOL on a wrong length or value. */
export function decodeTrust(m: ExtensionMessage): TrustMessage {
  const b = m.body;
  const bad = (what: string): never => {
    throw new PeerlinkError('ERR_PROTOCOL', `malformed ${what}`);
  };
  switch (m.code) {
    case TrustType.COMMIT:
      if (b.length !== 33 || (b[0] !== 0 && b[0] !== 1)) bad('TRUST_COMMIT');
      return { kind: 'commit', need: b[0] === 1, commitment: Buffer.from(b.subarray(1)) };
    case TrustType.REVEAL:
      if (b.length !== NONCE_BYTES) bad('TRUST_REVEAL');
      return { kind: 'reveal', nonce: Buffer.from(b) };
    case TrustType.CONFIRM:
      if (b.length !== 1 || (b[0] !== 0 && b[0] !== 1)) bad('TRUST_CONFIRM');
      return { kind: 'confirm', ok: b[0] === 1 };
    default:
      return bad(`trust message 0x${m.code.toString(16)}`);
  }
}
