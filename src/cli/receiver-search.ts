/**
 * What `peerlink send` knows about the receivers of its service while it looks for them:
 * who was found (browse results and --connect addresses), who could not be reached and
 * why (a key that differs, no key, a failed connection), and when the search is over.
 *
 * The search ends (docs/cli.md, "When send stops looking"):
 * - at the deadline (--timeout), whatever is still connecting then is not reached;
 * - with --to, as soon as every named receiver is connected;
 * - without --to, once discovery has settled: something was found, every receiver found
 *   is connected or has failed, every --connect address has been tried, and nothing new
 *   has happened for QUIET_MS.
 */
import type { DiscoveredPeer } from '../session/index.js';
import type { PeerlinkError } from '../errors.js';

/** Discovery has settled after this long without a new receiver, connection or failure. */
export const QUIET_MS = 1000;

export type KeyProblem = 'needs-key' | 'no-key' | 'different-key' | 'pki';

export interface FoundReceiver {
  /** Bonjour instance name, or the HOST:PORT of a --connect target. */
  name: string;
  /** Connected and sent to (or being sent to). */
  started: boolean;
  /** Why it cannot be reached, once known. */
  failure?: { code: string; message: string; key?: KeyProblem };
  /** A --connect address rather than a browse result. */
  manual: boolean;
}

export class ReceiverSearch {
  readonly receivers = new Map<string, FoundReceiver>();
  /** Peers of the service that are not receivers but have a key problem (for the hint when no receiver is reachable). */
  readonly otherKeyProblems = new Map<string, KeyProblem>();
  #lastChange = Date.now();
  /**
   * Peers (ids and instance names) already sent to. One receiver can be found twice — by its
   * --connect address and by browsing — and the browse result may arrive after sending began:
   * it is the same receiver, started, not one still to reach.
   */
  readonly #startedPeers = new Set<string>();
  /** Browse results' peer ids, where known (TXT, or a HELLO the session matched to the instance). */
  readonly #peerIds = new Map<string, string>();

  constructor(
    private readonly ourSecurity: 'none' | 'psk' | 'pki',
    private readonly wanted: ReadonlySet<string>,
  ) {}

  /** A browse result (or a TXT change). Returns the receiver when it is new. */
  found(info: DiscoveredPeer): FoundReceiver | undefined {
    const key = this.#keyProblemOf(info);
    if (info.discoveryInfo.role !== 'receiver') {
      if (key) this.otherKeyProblems.set(info.instanceName, key);
      return undefined;
    }
    let r = this.receivers.get(info.instanceName);
    const isNew = r === undefined;
    r ??= { name: info.instanceName, started: false, manual: false };
    this.receivers.set(r.name, r);
    if (info.peerId !== undefined) this.#peerIds.set(r.name, info.peerId);
    if (this.#startedPeers.has(info.instanceName) || (info.peerId !== undefined && this.#startedPeers.has(info.peerId))) {
      r.started = true;
      delete r.failure;
    }
    if (!info.compatible && !r.started && !r.failure) {
      const why =
        key === 'needs-key' ? 'it uses a key; give the same key with --psk-file F or PEERLINK_PSK'
        : key === 'no-key' ? `it runs without encryption (--insecure), and this sender ${this.ourSecurity === 'pki' ? 'uses --pki' : 'has a key'}`
        : key === 'pki' ? 'it uses --pki (keys of its own); run without a shared key and without --insecure'
        : `it is not compatible: ${info.incompatibleReason ?? 'unknown reason'}`;
      // A key on one side only (or two keys) is a PSK mismatch; --pki against anything else is another protocol.
      const pskProblem = key === 'needs-key' || (key === 'no-key' && this.ourSecurity === 'psk');
      r.failure = { code: pskProblem ? 'ERR_PSK_MISMATCH' : 'ERR_PROTOCOL', message: why, ...(key ? { key } : {}) };
    }
    if (isNew) this.#touch();
    return isNew ? r : undefined;
  }

  /** A browse result went away before we reached it: forget it. */
  lost(info: DiscoveredPeer): void {
    const r = this.receivers.get(info.instanceName);
    if (r && !r.started && !r.failure) this.receivers.delete(info.instanceName);
  }

  /** A --connect address to try. */
  addManual(address: string): void {
    this.receivers.set(address, { name: address, started: false, manual: true });
    this.#touch();
  }

  /** Sending to this receiver has started (by instance name or --connect address; peerId: the peer connected). */
  started(name: string | undefined, peerId?: string): void {
    if (peerId !== undefined) this.#startedPeers.add(peerId);
    if (name) this.#startedPeers.add(name);
    for (const r of this.receivers.values()) {
      if (r.name !== name && (peerId === undefined || r.manual || this.#peerIds.get(r.name) !== peerId)) continue;
      r.started = true;
      delete r.failure;
    }
    this.#touch();
  }

  /** A connected peer that is not sent to (not named by --to): it is settled too. */
  settledWithout(name: string | undefined): void {
    const r = name === undefined ? undefined : this.receivers.get(name);
    if (r && !r.started && !r.failure) r.failure = { code: 'ERR_CANCELLED', message: 'not named by --to' };
    this.#touch();
  }

  /**
   * A session peerError. Dials to browse results report `Instance (addresses port N)` as
   * their endpoint, --connect dials the address as given: either names the receiver.
   */
  failed(err: PeerlinkError, endpoint: string | undefined): void {
    if (endpoint === undefined) return;
    let best: FoundReceiver | undefined;
    for (const r of this.receivers.values()) {
      const match = r.manual ? endpoint === r.name : endpoint.startsWith(`${r.name} (`);
      if (match && (!best || r.name.length > best.name.length)) best = r;
    }
    const key: KeyProblem | undefined = err.code === 'ERR_PSK_MISMATCH' ? 'different-key' : undefined;
    if (!best) {
      const inst = /^(.*) \(/.exec(endpoint)?.[1];
      if (key && inst !== undefined) this.otherKeyProblems.set(inst, key);
      return;
    }
    if (best.started) return;
    const message = key ? 'it uses a different key' : err.message;
    best.failure = { code: err.code, message, ...(key ? { key } : {}) };
    this.#touch();
  }

  /** Whether `name` (display or instance name) is one of --to. */
  isWanted(displayName: string, instanceName: string | undefined): boolean {
    return this.wanted.size === 0 || this.wanted.has(displayName) || (instanceName !== undefined && this.wanted.has(instanceName));
  }

  /** Without --to: discovery has settled (see the file comment). */
  settled(now = Date.now()): boolean {
    if (this.receivers.size === 0) return false;
    for (const r of this.receivers.values()) if (!r.started && !r.failure) return false;
    return now - this.#lastChange >= QUIET_MS;
  }

  /** Receivers we should have sent to but could not reach (named by --to, or all without --to). */
  unreachable(): FoundReceiver[] {
    return [...this.receivers.values()].filter((r) => !r.started && r.failure?.code !== 'ERR_CANCELLED' && (r.manual || this.wanted.size === 0 || this.wanted.has(r.name)));
  }

  /** Receivers found that were never reached and have no failure yet: at the deadline they count as not reached in time. */
  expire(seconds: number): void {
    for (const r of this.receivers.values()) {
      if (!r.started && !r.failure) r.failure = { code: 'ERR_TIMEOUT', message: `found, but not connected within ${seconds} s` };
    }
  }

  /** The one-line hint about keys, e.g. "found 2 peers of this service that use a key; give --psk-file F or PEERLINK_PSK". */
  keyHint(): string | undefined {
    const counts = new Map<KeyProblem, number>();
    const add = (k: KeyProblem | undefined): void => {
      if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
    };
    for (const r of this.receivers.values()) if (!r.started) add(r.failure?.key);
    for (const k of this.otherKeyProblems.values()) add(k);
    const parts: string[] = [];
    const peers = (n: number): string => (n === 1 ? '1 peer of this service that uses' : `${n} peers of this service that use`);
    const needs = counts.get('needs-key');
    const different = counts.get('different-key');
    const noKey = counts.get('no-key');
    if (needs) parts.push(`found ${peers(needs)} a key; give it with --psk-file F or PEERLINK_PSK`);
    if (different) parts.push(`found ${peers(different)} a different key; check that both sides use the same key`);
    if (noKey) parts.push(`found ${noKey === 1 ? '1 peer of this service that runs' : `${noKey} peers of this service that run`} without a key, which this sender cannot reach ${this.ourSecurity === 'pki' ? 'with --pki' : 'with its key'}`);
    const pki = counts.get('pki');
    if (pki) parts.push(`found ${peers(pki)} --pki (keys of their own, the default); run without a shared key and without --insecure to reach them`);
    return parts.length ? parts.join('; ') : undefined;
  }

  #keyProblemOf(info: DiscoveredPeer): KeyProblem | undefined {
    const sec = info.txt.sec;
    if (info.compatible || typeof sec !== 'string' || sec === this.ourSecurity) return undefined;
    return sec === 'none' ? 'no-key' : sec === 'pki' ? 'pki' : 'needs-key';
  }

  #touch(): void {
    this.#lastChange = Date.now();
  }
}
