/** TLS-PSK constants and helpers shared by client and listener. */
import { PeerlinkError } from '../errors.js';

/**
 * The identity a client sends by default. It travels in clear text, so it is a fixed string
 * that says nothing about the device or the user (never a peer id).
 */
export const DEFAULT_PSK_IDENTITY = 'peerlink';

/**
 * AEAD suites only. TLS 1.3: Node 20 does PSK only with SHA-256 suites. TLS 1.2:
 * PSK-AES128-GCM-SHA256 (TLS_PSK_WITH_AES_128_GCM_SHA256, what Apple's guidance configures)
 * plus the ECDHE / CHACHA20 AEAD variants.
 */
export const PSK_TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
export const PSK_TLS12_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305';

/** Minimum key length (bytes). */
export const MIN_PSK_LENGTH = 16;

/** Accepts bytes or hex; checks the length. */
export function parsePsk(key: Buffer | Uint8Array | string): Buffer {
  let b: Buffer;
  if (typeof key === 'string') {
    const hex = key.trim().replace(/^0x/i, '');
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'the PSK must be hex digits (an even number of them)');
    b = Buffer.from(hex, 'hex');
  } else b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  if (b.length < MIN_PSK_LENGTH) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `the PSK is ${b.length} bytes; at least ${MIN_PSK_LENGTH} are needed`);
  return b;
}
