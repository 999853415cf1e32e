/**
 * The prefix proof of a resumed transfer. The receiver holds `have` bytes of a partial file
 * and sends the SHA-256 of each block of them (blocks of `block` bytes, the last one shorter);
 * the sender hashes the same ranges of its own source and continues from the first block that
 * differs (or from `have` when all match). Neither side trusts the other's bytes: the sender
 * compares digests of its own data, the receiver checks that the sender's digest of the prefix
 * it keeps equals its own, and the whole file is still verified by SHA-256 at the end — which a
 * sender can only produce if it has the prefix's bytes (a digest list does not compose into
 * one).
 *
 * Both sides hash the prefix once and keep the whole-file hash state at every block boundary
 * (`Hash.copy()`), so resuming at any boundary needs no second read of the prefix.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { PeerlinkError } from '../errors.js';

export const MiB = 1024 * 1024;
/** Smallest block; blocks are powers of two from here (4 MiB for a partial up to 512 MiB). */
export const RESUME_BLOCK_MIN = 4 * MiB;
/** Largest block a peer may name (a partial of 2^53 bytes in 128 blocks needs 2^46). */
export const RESUME_BLOCK_MAX = 2 ** 46;
/** Most digests in one accept: 128 × 67 bytes of JSON keeps it well under the 16 KiB control frame. */
export const MAX_RESUME_BLOCKS = 128;
/** Reads of the prefix are this large. */
const READ_SIZE = 1 * MiB;

/** The block size for a prefix of `have` bytes: the smallest power of two ≥ 4 MiB giving at most 128 blocks. */
export function blockSizeFor(have: number): number {
  let b = RESUME_BLOCK_MIN;
  while (Math.ceil(have / b) > MAX_RESUME_BLOCKS) b *= 2;
  return b;
}

/** True if `block` is a block size a peer may use: a power of two from RESUME_BLOCK_MIN to RESUME_BLOCK_MAX. */
export function isBlockSize(block: unknown): block is number {
  if (typeof block !== 'number' || !Number.isSafeInteger(block) || block < RESUME_BLOCK_MIN || block > RESUME_BLOCK_MAX) return false;
  return Math.log2(block) % 1 === 0;
}

/** What the receiver knows of its partial file after reading it once. */
export interface PrefixScan {
  /** Bytes of the partial file (≤ the announced size). */
  have: number;
  block: number;
  /** SHA-256 (hex) of each block of [0, have). */
  digests: string[];
  /** Whole-file hash states at each resumable offset, by offset: 0, block, 2·block, …, have. */
  states: Map<number, Hash>;
}

/** Reads [0, have) of the partial file once: block digests and the hash state at every boundary. */
export async function scanPrefix(fh: FileHandle, have: number): Promise<PrefixScan> {
  const block = blockSizeFor(have);
  const digests: string[] = [];
  const states = new Map<number, Hash>();
  const whole = createHash('sha256');
  states.set(0, whole.copy());
  const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, Math.max(have, 1)));
  let pos = 0;
  while (pos < have) {
    const end = Math.min(pos + block, have);
    const part = createHash('sha256');
    while (pos < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
      if (bytesRead === 0) throw new PeerlinkError('ERR_INTERNAL', 'the partial file shrank while it was read');
      const piece = buf.subarray(0, bytesRead);
      part.update(piece);
      whole.update(piece);
      pos += bytesRead;
    }
    digests.push(part.digest('hex'));
    states.set(end, whole.copy());
  }
  return { have, block, digests, states };
}

/** The sender's answer to a receiver's digests: where to continue, and the whole-file hash of [0, offset). */
export interface PrefixMatch {
  offset: number;
  hash: Hash;
}

/**
 * The sender's side: hashes its source from the start, block by block, against the
 * receiver's digests, and stops at the first block that differs (or after the last). Reads
 * at most `have` bytes of `body`; the caller destroys it afterwards.
 */
export async function matchPrefix(body: AsyncIterable<Buffer>, block: number, digests: readonly string[], have: number, signal?: AbortSignal): Promise<PrefixMatch> {
  let whole = createHash('sha256');
  if (digests.length === 0 || have === 0) return { offset: 0, hash: whole };
  let index = 0;
  let blockStart = 0;
  let blockEnd = Math.min(block, have);
  let before = whole.copy();
  let part = createHash('sha256');
  let pos = 0;
  for await (const chunk of body) {
    if (signal?.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
    let c = chunk;
    while (c.length > 0) {
      const take = Math.min(c.length, blockEnd - pos);
      const piece = c.subarray(0, take);
      part.update(piece);
      whole.update(piece);
      pos += take;
      c = c.subarray(take);
      if (pos === blockEnd) {
        if (part.digest('hex') !== digests[index]) return { offset: blockStart, hash: before };
        index++;
        if (index === digests.length || pos >= have) return { offset: pos, hash: whole };
        before = whole.copy();
        part = createHash('sha256');
        blockStart = pos;
        blockEnd = Math.min(pos + block, have);
      }
    }
  }
  // The source ended inside the prefix: it is not the file the receiver holds part of.
  whole = before;
  return { offset: blockStart, hash: whole };
}
