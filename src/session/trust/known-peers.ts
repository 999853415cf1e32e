/**
 * Known peers, like OpenSSH's known_hosts: peer id ↔ key fingerprint (SHA-256 of the
 * SubjectPublicKeyInfo), with the display name it had and when it was first and last seen.
 * A peer whose key is here connects without asking; a peer whose id is here with another key
 * is refused (ERR_PEER_KEY_CHANGED) unless the app accepts the change.
 *
 * Kept as JSON (`known-peers.json`) in the identity directory, or in memory for an identity
 * that is not kept. Every operation reads the file afresh and writes it atomically, so a
 * `peerlink trust forget` in another terminal is seen by a running session at its next
 * contact. Bounded: at most `max` entries (the least recently seen is dropped), and a file
 * over 1 MiB is not read (nobody is known: every contact is a first contact).
 */
import { readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PeerlinkError } from '../../errors.js';

export const KNOWN_PEERS_FILE = 'known-peers.json';
/** Default most entries kept. */
export const MAX_KNOWN_PEERS = 1024;
const MAX_FILE_BYTES = 1024 * 1024;

export interface KnownPeer {
  /** Peer id, lower-case UUID. */
  id: string;
  /** `sha256/BASE64` of the peer's SubjectPublicKeyInfo. */
  fingerprint: string;
  /** The display name it had when last seen (shown to people, never used to decide). */
  displayName: string;
  /** ISO 8601 times. */
  firstSeen: string;
  lastSeen: string;
}

export type KeyStatus = 'known' | 'unknown' | 'changed';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function valid(e: unknown): e is KnownPeer {
  const k = e as Partial<KnownPeer> | null;
  return (
    typeof k === 'object' && k !== null &&
    typeof k.id === 'string' && UUID.test(k.id) &&
    typeof k.fingerprint === 'string' && k.fingerprint.startsWith('sha256/') &&
    typeof k.displayName === 'string' && typeof k.firstSeen === 'string' && typeof k.lastSeen === 'string'
  );
}

export class KnownPeers {
  /** The JSON file, or undefined for an in-memory store. */
  readonly file: string | undefined;
  readonly max: number;
  #memory: KnownPeer[] = [];

  constructor(file?: string, max = MAX_KNOWN_PEERS) {
    this.file = file;
    this.max = max;
  }

  /** The store of an identity directory. */
  static inDirectory(dir: string): KnownPeers {
    return new KnownPeers(join(dir, KNOWN_PEERS_FILE));
  }

  list(): KnownPeer[] {
    return this.#read().map((e) => ({ ...e }));
  }

  get(id: string): KnownPeer | undefined {
    const e = this.#read().find((k) => k.id === id.toLowerCase());
    return e ? { ...e } : undefined;
  }

  /** Whether `fingerprint` is the key known for `id`. */
  check(id: string, fingerprint: string): KeyStatus {
    const e = this.#read().find((k) => k.id === id.toLowerCase());
    if (!e) return 'unknown';
    return e.fingerprint === fingerprint ? 'known' : 'changed';
  }

  /** Records `id` with this key (replacing any other), seen now. */
  trust(id: string, fingerprint: string, displayName: string, now: Date = new Date()): void {
    const all = this.#read();
    const key = id.toLowerCase();
    const at = now.toISOString();
    const old = all.find((k) => k.id === key);
    const rest = all.filter((k) => k.id !== key);
    rest.push({ id: key, fingerprint, displayName, firstSeen: old && old.fingerprint === fingerprint ? old.firstSeen : at, lastSeen: at });
    // Bounded: the least recently seen go first.
    rest.sort((a, b) => (a.lastSeen < b.lastSeen ? -1 : a.lastSeen > b.lastSeen ? 1 : 0));
    this.#write(rest.slice(Math.max(0, rest.length - this.max)));
  }

  /** Updates last seen (and the name) of a known peer. */
  seen(id: string, displayName: string, now: Date = new Date()): void {
    const all = this.#read();
    const e = all.find((k) => k.id === id.toLowerCase());
    if (!e) return;
    e.lastSeen = now.toISOString();
    e.displayName = displayName;
    this.#write(all);
  }

  /**
   * Forgets the peers matching `idOrName` (an id in either case, or a display name exactly);
   * returns them. The next contact with such a peer is a first contact again.
   */
  forget(idOrName: string): KnownPeer[] {
    const all = this.#read();
    const want = idOrName.trim();
    const match = (k: KnownPeer): boolean => k.id === want.toLowerCase() || k.displayName === want;
    const gone = all.filter(match);
    if (gone.length > 0) this.#write(all.filter((k) => !match(k)));
    return gone;
  }

  #read(): KnownPeer[] {
    if (this.file === undefined) return this.#memory;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    if (text.length > MAX_FILE_BYTES) return [];
    try {
      const parsed = JSON.parse(text) as { peers?: unknown };
      return Array.isArray(parsed.peers) ? parsed.peers.filter(valid).slice(-this.max) : [];
    } catch {
      return [];
    }
  }

  #write(entries: KnownPeer[]): void {
    if (this.file === undefined) {
      this.#memory = entries;
      return;
    }
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ version: 1, peers: entries }, null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
