/**
 * The resource stream's wire format. A resource travels on its own stream:
 *
 *   sender → receiver   HEADER  {type:'resource', v:1, name, size, sha256|null, resume?:1}   (the offer)
 *   receiver → sender   ACCEPT  {type:'accept', offset:0, resume?:{have, block, digests}}  or  REJECT {type:'reject', code, message}
 *   sender → receiver   RESUME  {type:'resume', offset, sha256}   (only after an ACCEPT with `resume`)
 *   sender → receiver   exactly (size - offset) raw bytes
 *   sender → receiver   TRAILER {type:'end', sha256}
 *   receiver → sender   RESULT  {type:'done', size, sha256, name}  or  {type:'error', code, message}
 *
 * The receiver answers the header only once its app has decided (a person may take
 * minutes): the sender sends no byte of the body before ACCEPT, so a refused offer
 * costs the receiver nothing. RESULT's `name` is the name the file was saved under
 * (`photo (1).jpg` when `photo.jpg` existed); a receiver of an earlier version omits it.
 *
 * Control frames are a 32-bit big-endian length and UTF-8 JSON, limited to
 * MAX_CONTROL_FRAME. The body is unframed so it costs nothing per chunk and flows with
 * the stream's own backpressure. The digest is in the trailer because a sender streaming
 * from HTTP (or hashing while it reads, so a 10 GiB file is read once) only knows it at
 * the end; a header digest, when the sender knows it beforehand, is checked as well.
 *
 * Resuming (resource-prefix.ts) is negotiated inside this exchange, so peers of either version
 * keep working: a sender that can resume says `resume:1` in its header (a receiver that
 * predates it ignores the field); only then does the receiver add `resume` to its ACCEPT — the
 * bytes it holds of a partial file of this name and size and the SHA-256 of each block of them
 * (`digests` empty when it holds none) — and only then does the sender answer with RESUME: the
 * offset it continues from and the SHA-256 of [0, offset) of its own file, which the receiver
 * checks against its own bytes before it keeps them. ACCEPT's `offset` stays 0 (a sender that
 * predates resuming refuses anything else).
 *
 * Folders (resource-folder-*.ts) use the same stream: FOLDER header and manifest, ACCEPT (with
 * `folder` — held files and the partial one — after a header with `resume:1`), FOLDER-RESUME
 * (the sender's proof and offset), each file's bytes and END, FOLDER-DONE.
 */
import type { Readable } from 'node:stream';
import { PeerlinkError, type PeerlinkErrorCode } from '../errors.js';
import { MAX_RESUME_BLOCKS, isBlockSize } from './resource-prefix.js';

export const RESOURCE_PROTOCOL_VERSION = 1;
/** Largest control frame (a header with a 255-byte name is far smaller). */
export const MAX_CONTROL_FRAME = 16 * 1024;
/** Largest resource announced; 2^53 - 1 keeps sizes exact as JSON numbers. */
export const MAX_RESOURCE_SIZE = Number.MAX_SAFE_INTEGER;

export interface ResourceHeader {
  type: 'resource';
  v: number;
  name: string;
  size: number;
  sha256: string | null;
  /** 1: the sender can resume (answers an ACCEPT's `resume` with RESUME). */
  resume?: 1;
}
/** What the receiver holds of a partial file of the offered name and size. */
export interface ResumeOffer {
  /** Bytes held (≤ the announced size). */
  have: number;
  /** Block size of `digests`: a power of two, 4 MiB to 2^46. */
  block: number;
  /** SHA-256 (hex) of each block of [0, have): exactly ceil(have / block) of them, at most 128. */
  digests: string[];
}
export interface ResourceAccept {
  type: 'accept';
  offset: number;
  resume?: ResumeOffer;
  /** Folders: what the receiver holds (only after a folder header with `resume`). */
  folder?: FolderResumeOffer;
}
export interface ResourceResume {
  type: 'resume';
  /** Where the body continues: 0, a multiple of the block below `have`, or `have`. */
  offset: number;
  /** SHA-256 (hex) of the sender's bytes [0, offset). */
  sha256: string;
}
export interface ResourceFailure {
  type: 'reject' | 'error';
  code: PeerlinkErrorCode;
  message: string;
}
export interface ResourceTrailer {
  type: 'end';
  sha256: string;
  /** Folders: the file changed while it was sent (its bytes are not what was listed); the receiver drops it. */
  changed?: 1;
}
/**
 * A folder's offer (resource-folder-*.ts): followed at once by `manifest` bytes of manifest
 * (resource-folder-manifest.ts); after the accept, each file's bytes and its trailer in turn.
 */
export interface FolderHeader {
  type: 'folder';
  v: number;
  name: string;
  files: number;
  dirs: number;
  size: number;
  manifest: number;
  /** 1: the sender can resume the folder (answers an ACCEPT's `folder` with FOLDER-RESUME; resource-folder-resume.ts). */
  resume?: 1;
}
/** What the receiver holds of an interrupted folder: verified files (ranges of file indices) and the file that was in flight. */
export interface FolderResumeOffer {
  /** [first, end) ranges of file indices (manifest order, files only), ascending and disjoint. */
  held: Array<[number, number]>;
  /** The file in flight: its index and what is held of it, as for a single file. */
  partial?: ResumeOffer & { file: number };
}
/** The sender's answer to a folder ACCEPT with `folder`: proof of the held files, and where the file in flight continues. */
export interface FolderResume {
  type: 'folder-resume';
  /** SHA-256 (hex) over the held files' SHA-256s (hex, in index order, each followed by a newline). */
  held: string;
  /** Where the file in flight continues (0 without one) and the SHA-256 of its bytes before that. */
  offset: number;
  sha256: string;
}
/** The receiver saved the folder (as `name`); `changed`: files dropped because they changed during the send. */
export interface FolderDone {
  type: 'folder-done';
  name: string;
  files: number;
  size: number;
  changed: string[];
}
export interface ResourceDone {
  type: 'done';
  size: number;
  sha256: string;
  /** The name the receiver saved the file under; absent from receivers that predate it. */
  name?: string;
}
export type ResourceFrame = ResourceHeader | ResourceAccept | ResourceResume | ResourceFailure | ResourceTrailer | ResourceDone | FolderHeader | FolderDone | FolderResume;

/** Most ranges of held files in one folder ACCEPT (each ~16 bytes of JSON: well under MAX_CONTROL_FRAME with the digests). */
export const MAX_HELD_RANGES = 256;

/** Codes a peer may report for a transfer; anything else is shown as ERR_PROTOCOL. */
const REMOTE_CODES: ReadonlySet<string> = new Set<PeerlinkErrorCode>([
  'ERR_RESOURCE_NAME',
  'ERR_RESOURCE_VERIFY',
  'ERR_RESOURCE_QUOTA',
  'ERR_RESOURCE_ABORTED',
  'ERR_RESOURCE_SOURCE',
  'ERR_RESOURCE_REFUSED',
  'ERR_RESOURCE_BUSY',
  'ERR_PROTOCOL',
  'ERR_CANCELLED',
  'ERR_CLOSED',
  'ERR_TIMEOUT',
  'ERR_INTERNAL',
]);

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function encodeFrame(frame: ResourceFrame): Buffer {
  const json = Buffer.from(JSON.stringify(frame), 'utf8');
  if (json.length > MAX_CONTROL_FRAME) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', 'resource control frame too large');
  const out = Buffer.allocUnsafe(4 + json.length);
  out.writeUInt32BE(json.length, 0);
  json.copy(out, 4);
  return out;
}

function protocolError(what: string): PeerlinkError {
  return new PeerlinkError('ERR_PROTOCOL', `resource stream: ${what}`);
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_RESOURCE_SIZE;
}

// Remote text ends up in logs and terminals: keep it printable and short.
function cleanText(s: unknown): string {
  // eslint-disable-next-line no-control-regex
  return typeof s === 'string' ? s.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?').slice(0, 300) : '';
}

/**
 * Checks a decoded frame's shape. The header's name is returned as received (any
 * string): judging it is the receiver's job (resource-name.ts), so that a refused name
 * is reported as ERR_RESOURCE_NAME rather than as a malformed frame.
 */
export function parseFrame(payload: Buffer): ResourceFrame {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw protocolError('control frame is not JSON');
  }
  if (typeof v !== 'object' || v === null) throw protocolError('control frame is not an object');
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case 'resource':
      if (typeof o.v !== 'number' || !isSize(o.size) || !(o.sha256 === null || (typeof o.sha256 === 'string' && SHA256_HEX.test(o.sha256))))
        throw protocolError('malformed header');
      if (o.v !== RESOURCE_PROTOCOL_VERSION) throw protocolError(`unsupported resource protocol version ${String(o.v)}`);
      return {
        type: 'resource',
        v: o.v,
        name: typeof o.name === 'string' ? o.name : '',
        size: o.size,
        sha256: o.sha256 as string | null,
        // Anything but exactly 1 is "cannot resume": the safe reading of a field we do not know.
        ...(o.resume === 1 ? { resume: 1 as const } : {}),
      };
    case 'accept': {
      if (!isSize(o.offset)) throw protocolError('malformed accept');
      if (o.folder !== undefined) return { type: 'accept', offset: o.offset, folder: parseFolderResumeOffer(o.folder) };
      if (o.resume === undefined) return { type: 'accept', offset: o.offset };
      return { type: 'accept', offset: o.offset, resume: parseResumeOffer(o.resume) };
    }
    case 'resume':
      if (!isSize(o.offset) || typeof o.sha256 !== 'string' || !SHA256_HEX.test(o.sha256)) throw protocolError('malformed resume');
      return { type: 'resume', offset: o.offset, sha256: o.sha256 };
    case 'reject':
    case 'error': {
      const code = typeof o.code === 'string' && REMOTE_CODES.has(o.code) ? (o.code as PeerlinkErrorCode) : 'ERR_PROTOCOL';
      return { type: o.type, code, message: cleanText(o.message) };
    }
    case 'end':
      if (typeof o.sha256 !== 'string' || !SHA256_HEX.test(o.sha256)) throw protocolError('malformed trailer');
      return o.changed === 1 ? { type: 'end', sha256: o.sha256, changed: 1 } : { type: 'end', sha256: o.sha256 };
    case 'folder':
      if (typeof o.v !== 'number' || !isSize(o.size) || !isSize(o.files) || !isSize(o.dirs) || !isSize(o.manifest)) throw protocolError('malformed folder header');
      if (o.v !== RESOURCE_PROTOCOL_VERSION) throw protocolError(`unsupported resource protocol version ${String(o.v)}`);
      return { type: 'folder', v: o.v, name: typeof o.name === 'string' ? o.name : '', files: o.files, dirs: o.dirs, size: o.size, manifest: o.manifest, ...(o.resume === 1 ? { resume: 1 as const } : {}) };
    case 'folder-resume':
      if (typeof o.held !== 'string' || !SHA256_HEX.test(o.held) || !isSize(o.offset) || typeof o.sha256 !== 'string' || !SHA256_HEX.test(o.sha256)) throw protocolError('malformed folder resume');
      return { type: 'folder-resume', held: o.held, offset: o.offset, sha256: o.sha256 };
    case 'folder-done':
      if (typeof o.name !== 'string' || !isSize(o.files) || !isSize(o.size) || !Array.isArray(o.changed) || !o.changed.every((c) => typeof c === 'string'))
        throw protocolError('malformed folder result');
      return { type: 'folder-done', name: o.name, files: o.files, size: o.size, changed: (o.changed as string[]).slice(0, 10_000) };
    case 'done':
      if (!isSize(o.size) || typeof o.sha256 !== 'string' || !SHA256_HEX.test(o.sha256) || !(o.name === undefined || typeof o.name === 'string'))
        throw protocolError('malformed result');
      return o.name === undefined ? { type: 'done', size: o.size, sha256: o.sha256 } : { type: 'done', size: o.size, sha256: o.sha256, name: o.name };
    default:
      throw protocolError('unknown control frame');
  }
}

/** Checks an ACCEPT's `resume`: every number bounded, the digest count exactly what `have` and `block` imply. */
function parseResumeOffer(r: unknown): ResumeOffer {
  if (typeof r !== 'object' || r === null) throw protocolError('malformed resume offer');
  const o = r as Record<string, unknown>;
  if (!isSize(o.have) || !isBlockSize(o.block) || !Array.isArray(o.digests) || o.digests.length > MAX_RESUME_BLOCKS) throw protocolError('malformed resume offer');
  if (o.digests.length !== Math.ceil(o.have / o.block)) throw protocolError('resume offer: the digests do not cover the bytes held');
  const digests: string[] = [];
  for (const d of o.digests as unknown[]) {
    if (typeof d !== 'string' || !SHA256_HEX.test(d)) throw protocolError('resume offer: malformed digest');
    digests.push(d);
  }
  return { have: o.have, block: o.block, digests };
}

/** Checks a folder ACCEPT's `folder`: ranges ascending, disjoint and bounded; the partial file's offer as for a file. Indices are checked against the manifest by the sender. */
function parseFolderResumeOffer(r: unknown): FolderResumeOffer {
  if (typeof r !== 'object' || r === null) throw protocolError('malformed folder resume offer');
  const o = r as Record<string, unknown>;
  if (!Array.isArray(o.held) || o.held.length > MAX_HELD_RANGES) throw protocolError('malformed folder resume offer');
  const held: Array<[number, number]> = [];
  let last = -1;
  for (const range of o.held as unknown[]) {
    if (!Array.isArray(range) || range.length !== 2 || !isSize(range[0]) || !isSize(range[1]) || range[0] <= last || range[1] <= range[0])
      throw protocolError('folder resume offer: malformed range');
    held.push([range[0], range[1]]);
    last = range[1];
  }
  if (o.partial === undefined) return { held };
  const p = o.partial as Record<string, unknown> | null;
  if (typeof p !== 'object' || p === null || !isSize(p.file)) throw protocolError('malformed folder resume offer');
  return { held, partial: { ...parseResumeOffer(p), file: p.file } };
}

/**
 * Pulls control frames and raw body bytes from a Readable, one read at a time, so the
 * stream's own backpressure governs how fast the peer may send.
 */
export class ResourceStreamReader {
  #held: Buffer | null = null;
  #interrupted: Error | undefined;
  #cancelWait: ((err: Error) => void) | undefined;

  constructor(private readonly stream: Readable) {}

  /**
   * Fails the read in progress (and every later one) with `err`, leaving the stream
   * open, so that the receiver can still tell the peer why (an idle timeout).
   */
  interrupt(err: Error): void {
    this.#interrupted ??= err;
    this.#cancelWait?.(err);
  }

  /** Whether bytes are at hand: the next read will not wait on the network. */
  buffered(): boolean {
    return this.#held !== null || this.stream.readableLength > 0;
  }

  /** The next chunk, at most `max` bytes; null at a clean end of the stream. */
  async chunk(max: number): Promise<Buffer | null> {
    if (this.#interrupted) throw this.#interrupted;
    let c = this.#held;
    this.#held = null;
    if (c === null) {
      try {
        c = await nextChunk(this.stream, (cancel) => (this.#cancelWait = cancel));
      } finally {
        this.#cancelWait = undefined;
      }
    }
    if (c === null) return null;
    if (c.length < SMALL_PIECE && c.length < max) c = this.#gather(c, max);
    if (c.length > max) {
      this.#held = c.subarray(max);
      c = c.subarray(0, max);
    }
    return c;
  }

  /**
   * A small piece is copied, together with the small pieces buffered behind it (up to
   * GATHER_MAX and `max` bytes): a stream that yields its pieces one by one (MessageStream
   * `pieces`) hands out views of transport reads, and a peer sending tiny messages must not
   * make the sink's queue hold one Buffer object, and a pinned transport read, per few bytes.
   */
  #gather(first: Buffer, max: number): Buffer {
    const parts = [first];
    let n = first.length;
    while (n < GATHER_MAX) {
      const next = this.stream.read() as Buffer | null;
      if (next === null) break;
      if (n + next.length > max || next.length >= SMALL_PIECE) {
        this.#held = next;
        break;
      }
      parts.push(next);
      n += next.length;
    }
    return Buffer.concat(parts, n);
  }

  /** Reads exactly n bytes; rejects with ERR_RESOURCE_ABORTED if the stream ends first. */
  async exactly(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const c = await this.chunk(n - have);
      if (c === null) throw new PeerlinkError('ERR_RESOURCE_ABORTED', 'the peer closed the resource stream early');
      parts.push(c);
      have += c.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** Bytes on the stream (length word included) of the last frame `frame()` returned. */
  lastFrameBytes = 0;

  async frame(): Promise<ResourceFrame> {
    const len = (await this.exactly(4)).readUInt32BE(0);
    if (len > MAX_CONTROL_FRAME) throw protocolError(`control frame of ${len} bytes exceeds ${MAX_CONTROL_FRAME}`);
    const f = parseFrame(await this.exactly(len));
    this.lastFrameBytes = 4 + len;
    return f;
  }
}

/** Pieces smaller than this are copied (gathered) rather than handed on as views. */
const SMALL_PIECE = 4096;
/** Most bytes gathered into one copy. */
const GATHER_MAX = 64 * 1024;

/** Resolves with the next buffered chunk, null at end, or rejects if the stream fails or closes early. */
function nextChunk(stream: Readable, onWait?: (cancel: (err: Error) => void) => void): Promise<Buffer | null> {
  const c = stream.read() as Buffer | null;
  if (c !== null) return Promise.resolve(c);
  if (stream.readableEnded) return Promise.resolve(null);
  if (stream.destroyed) return Promise.reject(stream.errored ?? new PeerlinkError('ERR_RESOURCE_ABORTED', 'the resource stream was closed'));
  return new Promise((resolve, reject) => {
    onWait?.((err) => {
      done();
      reject(err);
    });
    const done = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onReadable = (): void => {
      done();
      nextChunk(stream, onWait).then(resolve, reject);
    };
    const onEnd = (): void => {
      done();
      resolve(null);
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const onClose = (): void => {
      done();
      if (stream.readableEnded) resolve(null);
      else reject(stream.errored ?? new PeerlinkError('ERR_RESOURCE_ABORTED', 'the resource stream was closed before the transfer finished'));
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
