/**
 * Resources for one PeerSession: the glue between the session (which owns peers and
 * opens streams) and the transfer objects (which own framing, hashing and files).
 * Generic in the peer type so it depends on nothing but a way to open a stream.
 *
 * Incoming transfers are offers the app must accept (resource-receive.ts), limited per
 * peer (`budgets.transfersPerPeer`, counted from the moment the stream arrives, so
 * offers waiting for a person count too) and timed out when their sender goes silent
 * (`budgets.transferIdleTimeout`).
 */
import type { Duplex } from 'node:stream';
import { PeerlinkError } from '../errors.js';
import { ResourceStore, type ResourceStoreOptions } from './resource-store.js';
import { DEFAULT_ACCEPT_TIMEOUT_MS, DEFAULT_RESUME_TIMEOUT_MS, ResourceTransfer, type SendResourceOptions } from './resource-send.js';
import { IncomingResource, type AcceptResource, type IncomingPolicy } from './resource-receive.js';
import { BudgetLedger, resolveBudgets } from './budgets.js';

export interface ResourceManagerOptions<P> extends ResourceStoreOptions {
  /** Opens a stream to `peer` that the remote session hands to its ResourceManager's `receive()`. */
  open: (name: string, peer: P) => Duplex | Promise<Duplex>;
  /** Called for each incoming resource the app is to hear of (the session emits `resource`). */
  announce: (incoming: IncomingResource<P>) => void;
  /** Called for each offer refused before it was accepted (the session emits `resourceRefused`). */
  refused?: IncomingPolicy<P>['refused'];
  /** Whether the app listens for incoming resources: a listener accepts them. Default: never (everything is refused unless `accept` says yes). */
  listening?: () => boolean;
  /** Decides on each offer (may ask a person). */
  accept?: AcceptResource<P> | undefined;
  /** How long an offer may wait for a decision, ms, on either side. Default 300 000. */
  acceptTimeout?: number | undefined;
  /** The session's budgets (transfersPerPeer, transferIdleTimeout); default: a ledger of its own with the default budgets. */
  budgets?: BudgetLedger;
  /** The key a peer is counted under (and reported as) for per-peer budgets. Default String(peer). */
  peerKey?: (peer: P) => string;
  /** How long an outgoing transfer whose peer was lost waits for it, ms (0: fails at once). Default 600 000. */
  resumeTimeout?: number | undefined;
  /** Resolves when `peer` is connected (at once if it is); rejects when `signal` aborts. Without it, transfers never pause. */
  waitConnected?: (peer: P, signal: AbortSignal) => Promise<void>;
  /** Whether `peer` understands folder offers (its HELLO's FOLDERS capability); a folder to one that does not fails at once. */
  takesFolders?: (peer: P) => boolean;
}

export class ResourceManager<P> {
  readonly store: ResourceStore;
  readonly #open: ResourceManagerOptions<P>['open'];
  readonly #announce: ResourceManagerOptions<P>['announce'];
  readonly #refused: ResourceManagerOptions<P>['refused'];
  readonly #listening: () => boolean;
  readonly #accept: AcceptResource<P> | undefined;
  readonly #acceptTimeout: number;
  readonly #budgets: BudgetLedger;
  readonly #peerKey: (peer: P) => string;
  readonly #resumeTimeout: number;
  readonly #waitConnected: ResourceManagerOptions<P>['waitConnected'];
  readonly #takesFolders: ResourceManagerOptions<P>['takesFolders'];
  readonly #active = new Set<ResourceTransfer<P> | IncomingResource<P>>();
  /** Incoming transfers in progress, per peer key. */
  readonly #incoming = new Map<string, number>();
  /** Declared manifest bytes of the incoming folders under way (budget folderManifestBytesTotal). */
  #manifestBytes = 0;
  #closed = false;

  constructor(options: ResourceManagerOptions<P>) {
    const { open, announce, refused, listening, accept, acceptTimeout, budgets, peerKey, resumeTimeout, waitConnected, takesFolders, ...store } = options;
    if (resumeTimeout !== undefined && !(Number.isFinite(resumeTimeout) && resumeTimeout >= 0))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `resources.resumeTimeout must be a number of ms ≥ 0, got ${String(resumeTimeout)}`);
    this.#resumeTimeout = resumeTimeout ?? DEFAULT_RESUME_TIMEOUT_MS;
    this.#waitConnected = waitConnected;
    this.#takesFolders = takesFolders;
    if (accept !== undefined && typeof accept !== 'function') throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'resources.accept must be a function');
    if (acceptTimeout !== undefined && !(Number.isFinite(acceptTimeout) && acceptTimeout > 0))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `resources.acceptTimeout must be a positive number of ms, got ${String(acceptTimeout)}`);
    this.store = new ResourceStore(store);
    this.#open = open;
    this.#announce = announce;
    this.#refused = refused;
    this.#listening = listening ?? (() => false);
    this.#accept = accept;
    this.#acceptTimeout = acceptTimeout ?? DEFAULT_ACCEPT_TIMEOUT_MS;
    this.#budgets = budgets ?? new BudgetLedger(resolveBudgets(undefined), this);
    this.#peerKey = peerKey ?? ((p) => String(p));
  }

  /** Sends a file (path or file: URL) or an http(s) URL to `peer` under `name`. */
  send(source: string | URL, name: string, peer: P, options: SendResourceOptions = {}): ResourceTransfer<P> {
    const t = new ResourceTransfer<P>(
      source,
      name,
      peer,
      () => {
        if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
        return this.#open(name, peer);
      },
      { acceptTimeout: this.#acceptTimeout, resumeTimeout: this.#resumeTimeout, ...options },
      this.#waitConnected === undefined ? undefined : (signal) => this.#waitConnected!(peer, signal),
      this.#takesFolders === undefined ? undefined : () => this.#takesFolders!(peer),
    );
    this.#track(t);
    return t;
  }

  /** Takes an incoming resource stream from `peer`. */
  receive(stream: Duplex, peer: P): IncomingResource<P> {
    const limits = this.#budgets.limits;
    const key = this.#peerKey(peer);
    const n = this.#incoming.get(key) ?? 0;
    let refusal: PeerlinkError | undefined;
    if (n >= limits.transfersPerPeer) {
      refusal = new PeerlinkError('ERR_RESOURCE_BUSY', `the receiver takes at most ${limits.transfersPerPeer} transfers from one peer at a time; send again when one has finished`);
      this.#budgets.exceeded({ budget: 'transfersPerPeer', peer: key, detail: `${n} transfers in progress` });
    } else this.#incoming.set(key, n + 1);
    const r = new IncomingResource<P>(stream, peer, this.store, {
      announce: this.#announce,
      refused: this.#refused,
      listening: this.#listening,
      accept: this.#accept,
      acceptTimeout: this.#acceptTimeout,
      idleTimeout: limits.transferIdleTimeout,
      minProgressBytes: limits.transferMinBytes,
      owner: key,
      refusal,
      folderLimits: { entries: limits.folderEntries, manifestBytes: limits.folderManifestBytes, depth: limits.folderDepth },
      holdManifest: (bytes) => {
        if (this.#manifestBytes + bytes > limits.folderManifestBytesTotal) return undefined;
        this.#manifestBytes += bytes;
        let held = true;
        return () => {
          if (held) this.#manifestBytes -= bytes;
          held = false;
        };
      },
      exceeded: (budget, detail) => this.#budgets.exceeded({ budget, peer: key, detail }),
    });
    this.#track(r);
    if (!refusal) {
      void r.done
        .finally(() => {
          const left = (this.#incoming.get(key) ?? 1) - 1;
          if (left > 0) this.#incoming.set(key, left);
          else this.#incoming.delete(key);
        })
        .catch(() => undefined);
    }
    if (this.#closed) r.terminate(new PeerlinkError('ERR_CLOSED', 'the session is closed'));
    return r;
  }

  /** Transfers in progress. */
  get active(): ReadonlyArray<ResourceTransfer<P> | IncomingResource<P>> {
    return [...this.#active];
  }

  #track(t: ResourceTransfer<P> | IncomingResource<P>): void {
    this.#active.add(t);
    void t.done.finally(() => this.#active.delete(t)).catch(() => undefined);
  }

  /** Stops outgoing transfers and incoming ones; the receivers' partial files are kept for resuming. */
  async close(): Promise<void> {
    this.#closed = true;
    const reason = new PeerlinkError('ERR_RESOURCE_ABORTED', 'the session closed during the transfer');
    for (const t of this.#active) {
      if (t instanceof IncomingResource) t.terminate(reason);
      else t.stop();
    }
    await this.store.close();
    await Promise.allSettled([...this.#active].map((t) => t.done));
  }
}
