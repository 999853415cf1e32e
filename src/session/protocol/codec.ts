/**
 * Binary encoding of session messages (layouts in docs/session.md).
 *
 * Decoding never trusts a length: every count is compared with both the bytes actually
 * present and the field's limit before use, text must be valid UTF-8 without control
 * characters, and a message must end exactly where its fields end (HELLO alone may carry
 * trailing bytes, which newer versions use for extra fields). Violations throw
 * PeerlinkError ERR_MALFORMED_FRAME; a DATA payload over the negotiated size throws
 * ERR_MESSAGE_TOO_LARGE.
 */
import { PeerlinkError } from '../../errors.js';
import { findInvisible } from '../../display-text.js';
import {
  MessageType,
  Limits,
  EXTENSION_TYPE_MIN,
  EXTENSION_TYPE_MAX,
  type HelloRole,
  type SessionMessage,
  type HelloMessage,
} from './messages.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const ROLE_CODES: Record<HelloRole, number> = { peer: 0, server: 1, client: 2 };
const ROLES: readonly HelloRole[] = ['peer', 'server', 'client'];

function malformed(what: string): PeerlinkError {
  return new PeerlinkError('ERR_MALFORMED_FRAME', `malformed session message: ${what}`);
}

/** Sequential reader that bounds every read by the bytes present. */
class Reader {
  private off = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.buf.length - this.off;
  }

  private need(n: number, field: string): void {
    if (this.remaining < n) throw malformed(`${this.what} ends inside ${field} (needs ${n} more bytes, has ${this.remaining})`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.off++] as number;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  /** Length-prefixed UTF-8 text; `wide` = u16 length, else u8. */
  text(field: string, limit: number, wide = false, allowEmpty = true): string {
    const len = wide ? this.u16(`${field} length`) : this.u8(`${field} length`);
    if (len > limit) throw malformed(`${this.what} ${field} is ${len} bytes (limit ${limit})`);
    if (len === 0 && !allowEmpty) throw malformed(`${this.what} ${field} is empty`);
    const raw = this.bytes(len, field);
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      throw malformed(`${this.what} ${field} is not valid UTF-8`);
    }
    if (CONTROL.test(s)) throw malformed(`${this.what} ${field} contains control characters`);
    return s;
  }

  end(): void {
    if (this.remaining !== 0) throw malformed(`${this.what} has ${this.remaining} unexpected trailing bytes`);
  }
}

/** Writer over a buffer sized in advance; text fields are measured first. */
class Writer {
  readonly buf: Buffer;
  private off = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  u8(v: number): this {
    this.buf[this.off++] = v;
    return this;
  }
  u16(v: number): this {
    this.buf.writeUInt16BE(v, this.off);
    this.off += 2;
    return this;
  }
  u32(v: number): this {
    this.buf.writeUInt32BE(v >>> 0, this.off);
    this.off += 4;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }
}

function textBytes(s: string, limit: number, field: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > limit) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${field} is ${b.length} bytes of UTF-8 (limit ${limit})`);
  if (CONTROL.test(s)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${field} contains control characters`);
  return b;
}

function fixed16(b: Buffer, field: string): Buffer {
  if (b.length !== 16) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${field} must be 16 bytes, got ${b.length}`);
  return b;
}

const DATA_HEADER = Buffer.of(MessageType.DATA);

/**
 * Encodes a message into the chunks to send as ONE framed message. DATA returns its
 * header and the caller's payload separately so large payloads are never copied here.
 */
export function encodeMessage(msg: Exclude<SessionMessage, { type: 'unknown' }>): Buffer[] {
  switch (msg.type) {
    case 'data':
      return msg.payload.length > 0 ? [DATA_HEADER, msg.payload] : [DATA_HEADER];
    case 'dataBatch': {
      let n = 1;
      for (const b of msg.payloads) n += 4 + b.length;
      const w = new Writer(n).u8(MessageType.DATA_BATCH);
      for (const b of msg.payloads) w.u32(b.length).bytes(b);
      return [w.buf];
    }
    case 'hello': {
      const name = textBytes(msg.displayName, Limits.NAME_BYTES, 'display name');
      const inst = textBytes(msg.instanceName, Limits.NAME_BYTES, 'instance name');
      const w = new Writer(1 + 1 + 1 + 16 + 16 + 4 + 4 + 2 + 4 + 1 + name.length + 1 + inst.length);
      w.u8(MessageType.HELLO).u8(msg.version).u8(ROLE_CODES[msg.role]);
      w.bytes(fixed16(msg.peerId, 'peer id')).bytes(fixed16(msg.nonce, 'nonce'));
      w.u32(msg.capabilities).u32(msg.maxMessageSize).u16(msg.listenPort).u32(msg.lastGeneration);
      w.u8(name.length).bytes(name).u8(inst.length).bytes(inst);
      return [w.buf];
    }
    case 'welcome':
      return [new Writer(5).u8(MessageType.WELCOME).u32(msg.generation).buf];
    case 'bye': {
      // Truncate rather than fail: BYE is sent on the way out and must not throw.
      let s = msg.text.replace(new RegExp(CONTROL.source, 'g'), ' ');
      while (Buffer.byteLength(s, 'utf8') > Limits.BYE_TEXT_BYTES) s = s.slice(0, -1);
      const text = Buffer.from(s, 'utf8');
      return [new Writer(3 + text.length).u8(MessageType.BYE).u8(msg.reason).u8(text.length).bytes(text).buf];
    }
    case 'ping':
      return [new Writer(5).u8(MessageType.PING).u32(msg.seq).buf];
    case 'pong':
      return [new Writer(5).u8(MessageType.PONG).u32(msg.seq).buf];
    case 'streamOffer': {
      const name = textBytes(msg.name, Limits.STREAM_NAME_BYTES, 'stream name');
      if (msg.meta.length > Limits.STREAM_META_BYTES) {
        throw new PeerlinkError('ERR_INVALID_ARGUMENT', `stream metadata is ${msg.meta.length} bytes (limit ${Limits.STREAM_META_BYTES})`);
      }
      const w = new Writer(1 + 16 + 1 + 1 + 2 + name.length + 2 + msg.meta.length);
      w.u8(MessageType.STREAM_OFFER).bytes(fixed16(msg.token, 'token')).u8(msg.kind).u8(msg.dialBack ? 1 : 0);
      w.u16(name.length).bytes(name).u16(msg.meta.length).bytes(msg.meta);
      return [w.buf];
    }
    case 'streamReject':
      return [new Writer(18).u8(MessageType.STREAM_REJECT).bytes(fixed16(msg.token, 'token')).u8(msg.reason).buf];
    case 'streamBind':
      return [new Writer(34).u8(MessageType.STREAM_BIND).u8(msg.version).bytes(fixed16(msg.peerId, 'peer id')).bytes(fixed16(msg.token, 'token')).buf];
    case 'streamBound':
      return [Buffer.of(MessageType.STREAM_BOUND)];
    case 'extension':
      if (msg.code < EXTENSION_TYPE_MIN || msg.code > EXTENSION_TYPE_MAX) {
        throw new PeerlinkError('ERR_INVALID_ARGUMENT', `extension type 0x${msg.code.toString(16)} is outside 0x40-0x7f`);
      }
      return msg.body.length > 0 ? [Buffer.of(msg.code), msg.body] : [Buffer.of(msg.code)];
  }
}

/** Joins encodeMessage's chunks (for transports that take one buffer per message). */
export function encodeMessageBuffer(msg: Exclude<SessionMessage, { type: 'unknown' }>): Buffer {
  const parts = encodeMessage(msg);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}

export interface DecodeOptions {
  /** Largest DATA payload accepted (the local maxMessageSize). */
  maxDataSize: number;
}

/** Decodes one framed message. Throws PeerlinkError on anything malformed. */
export function decodeMessage(frame: Buffer, opts: DecodeOptions): SessionMessage {
  if (frame.length === 0) throw malformed('empty message (no type byte)');
  const type = frame[0] as number;
  const body = frame.subarray(1);
  switch (type) {
    case MessageType.DATA:
      if (body.length > opts.maxDataSize) {
        throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `peer sent a ${body.length}-byte message; the limit is ${opts.maxDataSize} bytes`);
      }
      return { type: 'data', payload: body };
    case MessageType.DATA_BATCH:
      return { type: 'dataBatch', payloads: decodeDataBatch(body, opts.maxDataSize) };
    case MessageType.HELLO:
      return decodeHello(body);
    case MessageType.WELCOME: {
      const r = new Reader(body, 'WELCOME');
      const generation = r.u32('generation');
      r.end();
      if (generation === 0) throw malformed('WELCOME generation 0');
      return { type: 'welcome', generation };
    }
    case MessageType.BYE: {
      const r = new Reader(body, 'BYE');
      const reason = r.u8('reason');
      const text = r.text('text', Limits.BYE_TEXT_BYTES);
      r.end();
      return { type: 'bye', reason, text };
    }
    case MessageType.PING:
    case MessageType.PONG: {
      const r = new Reader(body, type === MessageType.PING ? 'PING' : 'PONG');
      const seq = r.u32('seq');
      r.end();
      return type === MessageType.PING ? { type: 'ping', seq } : { type: 'pong', seq };
    }
    case MessageType.STREAM_OFFER: {
      const r = new Reader(body, 'STREAM_OFFER');
      const token = Buffer.from(r.bytes(16, 'token'));
      const kind = r.u8('kind');
      const flags = r.u8('flags');
      if ((flags & ~1) !== 0) throw malformed(`STREAM_OFFER has unknown flags 0x${flags.toString(16)}`);
      const name = r.text('name', Limits.STREAM_NAME_BYTES, true);
      const metaLen = r.u16('meta length');
      if (metaLen > Limits.STREAM_META_BYTES) throw malformed(`STREAM_OFFER meta is ${metaLen} bytes (limit ${Limits.STREAM_META_BYTES})`);
      const meta = Buffer.from(r.bytes(metaLen, 'meta'));
      r.end();
      return { type: 'streamOffer', token, kind, dialBack: (flags & 1) === 1, name, meta };
    }
    case MessageType.STREAM_REJECT: {
      const r = new Reader(body, 'STREAM_REJECT');
      const token = Buffer.from(r.bytes(16, 'token'));
      const reason = r.u8('reason');
      r.end();
      return { type: 'streamReject', token, reason };
    }
    case MessageType.STREAM_BIND: {
      const r = new Reader(body, 'STREAM_BIND');
      const version = r.u8('version');
      if (version === 0) throw malformed('STREAM_BIND version 0');
      const peerId = Buffer.from(r.bytes(16, 'peer id'));
      const token = Buffer.from(r.bytes(16, 'token'));
      r.end();
      return { type: 'streamBind', version, peerId, token };
    }
    case MessageType.STREAM_BOUND:
      new Reader(body, 'STREAM_BOUND').end();
      return { type: 'streamBound' };
    default:
      if (type >= EXTENSION_TYPE_MIN && type <= EXTENSION_TYPE_MAX) return { type: 'extension', code: type, body };
      return { type: 'unknown', code: type };
  }
}

function decodeHello(body: Buffer): HelloMessage {
  if (body.length + 1 > Limits.HELLO_BYTES) throw malformed(`HELLO is ${body.length + 1} bytes (limit ${Limits.HELLO_BYTES})`);
  const r = new Reader(body, 'HELLO');
  const version = r.u8('version');
  if (version === 0) throw malformed('HELLO version 0');
  const roleCode = r.u8('role');
  const role = ROLES[roleCode];
  if (role === undefined) throw malformed(`HELLO role ${roleCode} is unknown`);
  const peerId = Buffer.from(r.bytes(16, 'peer id'));
  const nonce = Buffer.from(r.bytes(16, 'nonce'));
  const capabilities = r.u32('capabilities');
  const maxMessageSize = r.u32('max message size');
  const listenPort = r.u16('listen port');
  const lastGeneration = r.u32('last generation');
  const displayName = r.text('display name', Limits.NAME_BYTES, false, false);
  // A display name must pass validateDisplayName (peer-id.ts): refused here, as bad input.
  if (findInvisible(displayName) !== undefined) throw malformed('HELLO display name contains an invisible character');
  const instanceName = r.text('instance name', Limits.NAME_BYTES);
  // Version 1 ends here; a newer peer may append fields, which a v1 reader skips.
  if (version === 1) r.end();
  return { type: 'hello', version, role, peerId, nonce, capabilities, maxMessageSize, listenPort, lastGeneration, displayName, instanceName };
}

/**
 * Splits a DATA_BATCH body (`u32 length` + payload, repeated, at least one) into views of
 * its payloads, each checked against the local limit before it is taken.
 */
export function decodeDataBatch(body: Buffer, maxDataSize: number): Buffer[] {
  if (body.length === 0) throw malformed('empty DATA_BATCH');
  const out: Buffer[] = [];
  let off = 0;
  while (off < body.length) {
    if (body.length - off < 4) throw malformed(`DATA_BATCH ends inside a length (${body.length - off} bytes left)`);
    const len = body.readUInt32BE(off);
    if (len > maxDataSize) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `peer sent a ${len}-byte message; the limit is ${maxDataSize} bytes`);
    off += 4;
    if (body.length - off < len) throw malformed(`DATA_BATCH message of ${len} bytes has only ${body.length - off}`);
    out.push(body.subarray(off, off + len));
    off += len;
  }
  return out;
}
