/**
 * The bytes of one best-effort datagram and their protection (docs/session.md "Datagrams").
 *
 *   kind u8 | flow tag (8 bytes) | sequence number u64 | payload … | AEAD tag (16 bytes, secured only)
 *
 * Secured sessions (any TLS control channel: PSK or PKI) seal the payload with AES-256-GCM. The
 * keys come from the control channel's TLS session through the RFC 5705 exporter (label
 * EXPORTER_LABEL, context = the flow's 16-byte token, so a new flow on the same connection gets
 * new keys): one key and IV per direction, so the two sides never use a nonce twice under one
 * key. The nonce is the IV XOR the 64-bit sequence number (the TLS 1.3 construction, RFC 8446
 * §5.3). The 17-byte header is the AEAD's additional data: kind, tag and sequence number
 * cannot be changed either. Without security the payload travels in clear and only the flow
 * tag (a random per-flow value) tells this flow's datagrams from stray ones: anyone who can
 * see the traffic can forge them.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const HEADER_BYTES = 17;
export const AEAD_TAG_BYTES = 16;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const CIPHER = 'aes-256-gcm';

/**
 * RFC 5705 §4: labels starting "EXPERIMENTAL" are for private use without IANA registration.
 * Versioned, so a later change of the construction cannot share keys with this one.
 */
export const EXPORTER_LABEL = 'EXPERIMENTAL-peerlink-datagrams-v1';
/** Exporter bytes: key and IV for client→server, then key and IV for server→client. */
export const EXPORTER_BYTES = 2 * (KEY_BYTES + IV_BYTES);

export const DatagramKind = {
  /** An app message. */
  DATA: 1,
  /** Set-up probe; payload one byte of ProbeFlags. */
  PROBE: 2,
} as const;

export const ProbeFlags = {
  /** The sender has received a datagram of this flow. */
  HEARD: 1,
  /** The sender knows its datagrams arrive (it got a probe with HEARD). */
  CONFIRMED: 2,
} as const;

/** Largest sequence number (JS numbers are exact up to 2^53). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

export interface DirectionKey {
  key: Buffer;
  iv: Buffer;
}

export interface FlowKeys {
  send: DirectionKey;
  receive: DirectionKey;
}

/**
 * Splits exporter output into per-direction keys. `tlsClient`: this side is the control
 * connection's TLS client (it dialled).
 */
export function splitKeys(material: Buffer, tlsClient: boolean): FlowKeys {
  const c2s = { key: material.subarray(0, KEY_BYTES), iv: material.subarray(KEY_BYTES, KEY_BYTES + IV_BYTES) };
  const s2c = { key: material.subarray(KEY_BYTES + IV_BYTES, 2 * KEY_BYTES + IV_BYTES), iv: material.subarray(2 * KEY_BYTES + IV_BYTES, EXPORTER_BYTES) };
  return tlsClient ? { send: c2s, receive: s2c } : { send: s2c, receive: c2s };
}

function nonce(iv: Buffer, seq: number): Buffer {
  const n = Buffer.from(iv);
  const hi = Math.floor(seq / 0x100000000);
  const lo = seq >>> 0;
  n.writeUInt32BE((n.readUInt32BE(4) ^ hi) >>> 0, 4);
  n.writeUInt32BE((n.readUInt32BE(8) ^ lo) >>> 0, 8);
  return n;
}

/** Bytes a datagram adds to its payload. */
export function overhead(secured: boolean): number {
  return HEADER_BYTES + (secured ? AEAD_TAG_BYTES : 0);
}

export function writeHeader(kind: number, tag: Buffer, seq: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h[0] = kind;
  tag.copy(h, 1, 0, 8);
  h.writeUInt32BE(Math.floor(seq / 0x100000000), 9);
  h.writeUInt32BE(seq >>> 0, 13);
  return h;
}

/** The chunks of one datagram (header, payload or ciphertext, tag), for socket.send. */
export function seal(kind: number, tag: Buffer, seq: number, payload: Buffer, key: DirectionKey | undefined): Buffer[] {
  const header = writeHeader(kind, tag, seq);
  if (key === undefined) return [header, payload];
  const c = createCipheriv(CIPHER, key.key, nonce(key.iv, seq));
  c.setAAD(header);
  const body = c.update(payload);
  c.final();
  return [header, body, c.getAuthTag()];
}

export interface ParsedDatagram {
  kind: number;
  seq: number;
}

/**
 * Reads and checks the clear header: length, kind, flow tag, sequence range. Cheap: run on
 * every datagram before the replay window and before any cryptography.
 */
export function parseHeader(d: Buffer, tag: Buffer, secured: boolean): ParsedDatagram | undefined {
  if (d.length < overhead(secured)) return undefined;
  const kind = d[0] as number;
  if (kind !== DatagramKind.DATA && kind !== DatagramKind.PROBE) return undefined;
  if (d.readUInt32BE(1) !== tag.readUInt32BE(0) || d.readUInt32BE(5) !== tag.readUInt32BE(4)) return undefined;
  const hi = d.readUInt32BE(9);
  if (hi > 0x1fffff) return undefined; // above 2^53
  const seq = hi * 0x100000000 + d.readUInt32BE(13);
  if (seq === 0) return undefined;
  return { kind, seq };
}

/** The payload of a datagram whose header parseHeader() accepted; undefined when it fails authentication. */
export function open(d: Buffer, seq: number, key: DirectionKey | undefined): Buffer | undefined {
  if (key === undefined) return d.subarray(HEADER_BYTES);
  const end = d.length - AEAD_TAG_BYTES;
  try {
    const c = createDecipheriv(CIPHER, key.key, nonce(key.iv, seq));
    c.setAAD(d.subarray(0, HEADER_BYTES));
    c.setAuthTag(d.subarray(end));
    const head = c.update(d.subarray(HEADER_BYTES, end));
    c.final(); // throws when the tag does not match
    return head;
  } catch {
    return undefined;
  }
}
