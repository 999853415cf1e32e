/**
 * Dial targets: the places the session connects to (browse results and connect()
 * endpoints), each with its own back-off, so a peer that is unreachable or refuses us
 * (wrong key) is retried ever more slowly without slowing anyone else.
 */
import { Endpoint } from '../net/index.js';

import type { DiscoveredPeer } from './discovery-info.js';

export class DialTarget {
  /** `svc:<instance>` for browse results, `ep:<endpoint>` for connect(), `inv:<endpoint>` for invite() by address. */
  readonly key: string;
  /** connect() targets: the endpoint given. */
  endpoint: Endpoint | undefined;
  /** Browse targets: the resolved addresses and port; each attempt takes the next address. */
  addresses: string[] = [];
  port = 0;
  /** The browse result behind it (undefined for connect() targets). */
  discovered: DiscoveredPeer | undefined;
  /** The peer behind it, once a HELLO told us (or TXT did). */
  peerKey: string | undefined;
  /** connect() targets are dialled until cancelConnect(); browse targets while they are present. */
  readonly manual: boolean;
  /** Still in the browse results (always true for manual targets until cancelled). */
  present = true;
  /** The target is ourselves (our own advertisement): never dialled. */
  self = false;
  /** Dial attempts since the last successful connection. */
  attempts = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** A dial (connection or handshake) in progress. */
  busy = false;
  /** Do not dial before this time (ms since epoch), e.g. after the peer said goodbye. */
  notBefore = 0;
  /** When it left the browse results (or connect() was cancelled): absent targets expire (absentPeerExpiry). */
  absentSince = 0;
  /** Dials deferred in a row because the peer's incoming connection was in its handshake. */
  handshakeWaits = 0;
  /** Its first dial waits for our own service's announcement (Dialer.registered). */
  awaitingAnnouncement = false;
  /** When discovery was last asked to reconfirm it after a failed dial (ms since epoch). */
  reconfirmedAt = 0;
  /** Browse targets: the destination (DestinationBackoff key) of the dial in flight. */
  destination: string | undefined;
  /** An invite() in flight on this target: its next dial carries INVITE (invitations.ts). */
  invitation: { context: Buffer; timeoutMs: number } | undefined;

  constructor(key: string, endpoint: Endpoint | undefined, manual: boolean) {
    this.key = key;
    this.endpoint = endpoint;
    this.manual = manual;
  }

  /** Where the next attempt goes: the endpoint, or the addresses in turn (IPv4 first). */
  nextEndpoint(): Endpoint | undefined {
    if (this.endpoint) return this.endpoint;
    if (this.addresses.length === 0 || this.port === 0) return undefined;
    const addr = this.addresses[this.attempts % this.addresses.length] as string;
    return Endpoint.hostPort(addr, this.port);
  }

  /** Text for reports. */
  describe(): string {
    if (this.endpoint) return Endpoint.format(this.endpoint);
    return `${this.key.slice(4)} (${this.addresses.join(', ')} port ${this.port})`;
  }

  /** Runs `fn` after `ms`; at once (next turn of the event loop) for 0, since setTimeout(0) waits about 1 ms. */
  setTimer(fn: () => void, ms: number): void {
    this.cancelTimer();
    const run = (): void => {
      this.timer = undefined;
      this.immediate = undefined;
      fn();
    };
    if (ms <= 0) this.immediate = setImmediate(run).unref();
    else this.timer = setTimeout(run, ms).unref();
  }

  /** A dial is planned. */
  get scheduled(): boolean {
    return this.timer !== undefined || this.immediate !== undefined;
  }

  cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Exponential back-off with jitter (half to full delay), so restarts do not dial in lockstep. */
  backoff(initial: number, max: number): number {
    const base = Math.min(max, initial * 2 ** Math.min(this.attempts, 16));
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }
}
