/**
 * Resources for one PeerSession: the glue between the session (which owns peers and
 * opens streams) and the transfer objects (which own framing, hashing and files).
 * Generic in the peer type so it depends on nothing but a way to open a stream.
 */
import type { Duplex } from 'node:stream';
import { PeerlinkError } from '../errors.js';
import { ResourceStore, type ResourceStoreOptions } from './resource-store.js';
import { ResourceTransfer, type SendResourceOptions } from './resource-send.js';
import { IncomingResource } from './resource-receive.js';

export interface ResourceManagerOptions<P> extends ResourceStoreOptions {
  /** Opens a stream to `peer` that the remote session hands to its ResourceManager's `receive()`. */
  open: (name: string, peer: P) => Duplex | Promise<Duplex>;
  /** Called for each incoming resource once its header is known (the session emits `resource`). */
  announce: (incoming: IncomingResource<P>) => void;
}

export class ResourceManager<P> {
  readonly store: ResourceStore;
  readonly #open: ResourceManagerOptions<P>['open'];
  readonly #announce: ResourceManagerOptions<P>['announce'];
  readonly #active = new Set<ResourceTransfer<P> | IncomingResource<P>>();
  #closed = false;

  constructor(options: ResourceManagerOptions<P>) {
    const { open, announce, ...store } = options;
    this.store = new ResourceStore(store);
    this.#open = open;
    this.#announce = announce;
  }

  /** Sends a file (path or file: URL) or an http(s) URL to `peer` under `name`. */
  send(source: string | URL, name: string, peer: P, options: SendResourceOptions = {}): ResourceTransfer<P> {
    const t = new ResourceTransfer<P>(source, name, peer, () => {
      if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
      return this.#open(name, peer);
    }, options);
    this.#track(t);
    return t;
  }

  /** Takes an incoming resource stream from `peer`. */
  receive(stream: Duplex, peer: P): IncomingResource<P> {
    const r = new IncomingResource<P>(stream, peer, this.store, this.#announce);
    this.#track(r);
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

  /** Cancels outgoing transfers, aborts incoming ones (their temp files are removed). */
  async close(): Promise<void> {
    this.#closed = true;
    const reason = new PeerlinkError('ERR_RESOURCE_ABORTED', 'the session closed during the transfer');
    for (const t of this.#active) {
      if (t instanceof IncomingResource) t.terminate(reason);
      else t.cancel();
    }
    await this.store.close();
    await Promise.allSettled([...this.#active].map((t) => t.done));
  }
}
