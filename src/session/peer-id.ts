/**
 * PeerID: a 128-bit identifier (written as a UUID) plus a display name — the counterpart of
 * Multipeer Connectivity's MCPeerID. Random (v4) by default; with `security: pki` derived from
 * the public key (trust/identity.ts), so that it cannot be claimed without the key.
 *
 * Ids are compared as 128-bit unsigned numbers (big-endian byte order), never as strings:
 * Apple's `uuidString` is upper-case and Node's `randomUUID()` lower-case, so a string
 * comparison would make two implementations disagree on which side drops a duplicate
 * connection.
 *
 * Persistence is opt-in (`PeerID.loadOrCreate(file)`): a persisted id lets other devices
 * recognise this one over time, which is a privacy cost the app chooses knowingly.
 */
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { PeerlinkError } from '../errors.js';
import { codePointLabel, findInvisible } from '../display-text.js';
import { fsPromises } from '../lazy-builtins.js';

/** Longest display name in UTF-8 bytes: a DNS-SD instance name is one 63-byte label. */
export const MAX_DISPLAY_NAME_BYTES = 63;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// C0/C1 controls and DEL never belong in a name shown to a person.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Throws ERR_INVALID_ARGUMENT unless `name` is a usable display name. */
export function validateDisplayName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'the display name is empty; give every peer a name people can recognise');
  }
  if (CONTROL.test(name)) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'the display name contains control characters');
  }
  // Zero-width, format and separator characters let one peer pass for another (display-text.ts).
  const invisible = findInvisible(name);
  if (invisible !== undefined) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `the display name contains the invisible character ${codePointLabel(invisible)}; use visible characters only`);
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_DISPLAY_NAME_BYTES) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `the display name is ${bytes} bytes of UTF-8; at most ${MAX_DISPLAY_NAME_BYTES} fit in a Bonjour instance name`);
  }
  return name;
}

function bytesToUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class PeerID {
  /** The 16 id bytes (copy; the instance never changes). */
  readonly #bytes: Buffer;
  /** Canonical lower-case UUID text. */
  readonly id: string;
  readonly displayName: string;

  private constructor(bytes: Buffer, displayName: string) {
    this.#bytes = Buffer.from(bytes);
    this.id = bytesToUuid(this.#bytes);
    this.displayName = displayName;
  }

  /** A new random (version 4) id. */
  static generate(displayName: string): PeerID {
    const b = randomBytes(16);
    b[6] = ((b[6] as number) & 0x0f) | 0x40; // version 4
    b[8] = ((b[8] as number) & 0x3f) | 0x80; // RFC 4122 variant
    return new PeerID(b, validateDisplayName(displayName));
  }

  /** From UUID text in either case (Apple writes upper case). */
  static fromString(uuid: string, displayName: string): PeerID {
    if (!UUID_RE.test(uuid)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `"${uuid}" is not a UUID`);
    return new PeerID(Buffer.from(uuid.replace(/-/g, ''), 'hex'), validateDisplayName(displayName));
  }

  /**
   * From 16 bytes read off the wire. Any 128-bit value is accepted (other implementations
   * may derive ids from keys rather than use v4 UUIDs).
   */
  static fromBytes(bytes: Uint8Array, displayName: string): PeerID {
    if (bytes.length !== 16) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `a peer id is 16 bytes, got ${bytes.length}`);
    return new PeerID(Buffer.from(bytes), validateDisplayName(displayName));
  }

  /**
   * The id stored in `file` (JSON `{"id", "displayName"}`), or a new one written there
   * (mode 0600, atomically). A `displayName` given here replaces the stored one and is saved.
   */
  static async loadOrCreate(file: string, displayName?: string): Promise<PeerID> {
    let text: string | undefined;
    try {
      text = await fsPromises().readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === undefined) {
      if (displayName === undefined) {
        throw new PeerlinkError('ERR_INVALID_ARGUMENT', `no peer id stored in ${file} yet; give a display name to create one`);
      }
      const created = PeerID.generate(displayName);
      await created.save(file);
      return created;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${file} does not hold a peer id (not JSON); delete it to make a new one`, { cause: err });
    }
    const rec = parsed as { id?: unknown; displayName?: unknown };
    if (typeof rec.id !== 'string' || typeof rec.displayName !== 'string') {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${file} does not hold a peer id ({"id", "displayName"}); delete it to make a new one`);
    }
    const loaded = PeerID.fromString(rec.id, displayName ?? rec.displayName);
    if (displayName !== undefined && displayName !== rec.displayName) await loaded.save(file);
    return loaded;
  }

  /** Writes `{"id", "displayName"}` to `file` atomically with mode 0600. */
  async save(file: string): Promise<void> {
    await fsPromises().mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await fsPromises().writeFile(tmp, JSON.stringify({ id: this.id, displayName: this.displayName }) + '\n', { mode: 0o600 });
    await fsPromises().rename(tmp, file);
  }

  /** The 16 id bytes (a copy). */
  toBytes(): Buffer {
    return Buffer.from(this.#bytes);
  }

  /** The same id with another display name. */
  withDisplayName(displayName: string): PeerID {
    return new PeerID(this.#bytes, validateDisplayName(displayName));
  }

  /** -1, 0 or 1 comparing the ids as unsigned 128-bit numbers; display names do not count. */
  compare(other: PeerID): -1 | 0 | 1 {
    return comparePeerIdBytes(this.#bytes, other.#bytes);
  }

  equals(other: PeerID): boolean {
    return this.compare(other) === 0;
  }

  toString(): string {
    return `${this.displayName} (${this.id})`;
  }

  toJSON(): { id: string; displayName: string } {
    return { id: this.id, displayName: this.displayName };
  }
}

/** Compares two 16-byte ids as big-endian unsigned 128-bit numbers. */
export function comparePeerIdBytes(a: Uint8Array, b: Uint8Array): -1 | 0 | 1 {
  // Buffer.compare is a lexicographic unsigned byte comparison, which for equal-length
  // big-endian numbers is numeric comparison.
  const c = Buffer.compare(a, b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/** Canonical key for maps: lower-case UUID text (normalised, so case never splits a peer). */
export function peerKey(id: PeerID | Uint8Array): string {
  return id instanceof PeerID ? id.id : bytesToUuid(Buffer.from(id));
}
