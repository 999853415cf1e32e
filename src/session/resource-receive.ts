/**
 * An incoming resource (Multipeer's didStartReceivingResource / didFinishReceivingResource).
 *
 * The header is read, the name judged and the quota checked before anything is
 * written; a refusal is sent back with its code, so both sides fail the same way.
 * The body is copied from the stream to the sink chunk by chunk, waiting for the disk
 * whenever the sink is full, which stops reading the stream and so slows the sender.
 */
import type { Duplex } from 'node:stream';
import { PeerlinkError } from '../errors.js';
import { describe } from './resource-name.js';
import { TransferBase } from './resource-progress.js';
import type { ResourceStore } from './resource-store.js';
import type { PlacedResource, ResourceSink } from './resource-sink.js';
import { ResourceStreamReader, encodeFrame } from './resource-wire.js';
import { asTransferError, closeGracefully, waitDrain } from './resource-stream.js';

export type ReceivedResource = PlacedResource;

/** A peer that opens a resource stream must announce the resource within this time. */
const HEADER_TIMEOUT_MS = 30_000;
/** Largest piece handed to the sink at once (bounds memory when the stream yields large chunks). */
const MAX_PIECE = 1024 * 1024;

export class IncomingResource<P = unknown> extends TransferBase<P, ReceivedResource> {
  readonly direction = 'receive' as const;
  #name = '';
  #sha256: string | null = null;
  #sink: ResourceSink | undefined;
  #cancelled: PeerlinkError | undefined;
  readonly #stream: Duplex;

  /**
   * Starts reading `stream`. `announce` is called once the header is known (name and
   * size set), before the name is judged, so an app also hears of refused transfers
   * (their `done` rejects with ERR_RESOURCE_NAME).
   */
  constructor(stream: Duplex, peer: P, store: ResourceStore, announce: (r: IncomingResource<P>) => void) {
    super(peer);
    this.#stream = stream;
    stream.on('error', () => undefined); // failures surface through the reader
    this.#run(store, announce).then(
      (r) => this.succeed(r),
      (err: unknown) => this.fail(this.#cancelled ?? asTransferError(err, false)),
    );
  }

  /** The name the sender gave (unvalidated until `done` resolves; print it with care). */
  get name(): string {
    return this.#name;
  }

  /** The name, quoted and with control characters escaped, for logs and terminals. */
  get printableName(): string {
    return describe(this.#name);
  }

  /** Announced size in bytes. */
  get size(): number {
    return this.progress.total;
  }

  /** Stops receiving; the partial file is removed and the sender told. */
  cancel(): void {
    if (this.state === 'completed' || this.state === 'failed' || this.#cancelled) return;
    // The sender is told at once; the read loop stops at its next step (even if everything
    // has already arrived), removes the temp file and settles `done` with this error.
    this.#cancelled = new PeerlinkError('ERR_CANCELLED', 'the receiver cancelled the transfer');
    this.#tell('error', this.#cancelled);
  }

  /** Stops at once (the session is closing): the stream is destroyed, the temp file removed. */
  terminate(reason: PeerlinkError): void {
    if (this.state === 'completed' || this.state === 'failed') return;
    this.#cancelled ??= reason;
    this.#stream.destroy();
  }

  async #run(store: ResourceStore, announce: (r: IncomingResource<P>) => void): Promise<ReceivedResource> {
    const stream = this.#stream;
    const reader = new ResourceStreamReader(stream);
    let header;
    const timer = setTimeout(() => stream.destroy(new PeerlinkError('ERR_TIMEOUT', 'the peer opened a resource stream but sent no header')), HEADER_TIMEOUT_MS);
    timer.unref();
    try {
      header = await reader.frame();
    } finally {
      clearTimeout(timer);
    }
    if (header.type !== 'resource') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected a header, got ${header.type}`);
    this.#name = header.name;
    this.#sha256 = header.sha256;
    this.setTotal(header.size);
    this.published();
    try {
      announce(this);
    } catch {
      // an app's listener throwing must not break the transfer
    }
    if (this.state === 'failed') throw this.error;
    try {
      this.#sink = await store.open(header.name, header.size, header.sha256);
    } catch (err) {
      const e = asTransferError(err, false);
      this.#tell('reject', e);
      throw e;
    }
    const sink = this.#sink;
    sink.on('error', () => undefined); // reported through write callbacks / commit
    try {
      stream.write(encodeFrame({ type: 'accept', offset: 0 }));
      this.setState('transferring');
      this.advance(0, true);
      let remaining = header.size;
      while (remaining > 0) {
        // cancel() is honoured here even when the rest of the data has already arrived.
        if (this.#cancelled) throw this.#cancelled;
        const piece = await reader.chunk(Math.min(remaining, MAX_PIECE));
        if (piece === null) throw new PeerlinkError('ERR_RESOURCE_ABORTED', `the peer stopped after ${header.size - remaining} of ${header.size} bytes`);
        remaining -= piece.length;
        const more = sink.write(piece);
        this.advance(piece.length);
        if (!more) await waitDrain(sink);
        if (sink.errored) throw sink.errored;
      }
      sink.end();
      this.setState('verifying');
      const trailer = await reader.frame();
      if (this.#cancelled) throw this.#cancelled;
      if (trailer.type !== 'end') throw new PeerlinkError('ERR_RESOURCE_VERIFY', `the peer sent more than the ${header.size} bytes it announced`);
      const placed = await sink.commit(trailer.sha256);
      stream.write(encodeFrame({ type: 'done', size: placed.size, sha256: placed.sha256 }));
      closeGracefully(stream);
      return placed;
    } catch (err) {
      const e = this.#cancelled ?? asTransferError(sink.errored && !(err instanceof PeerlinkError) ? sink.errored : err, false);
      await sink.abort(e);
      this.#tell('error', e);
      throw e;
    }
  }

  /** Sends a failure to the sender (if the stream still works) and closes. */
  #tell(type: 'reject' | 'error', e: PeerlinkError): void {
    const stream = this.#stream;
    if (!stream.destroyed && !stream.writableEnded) {
      stream.write(encodeFrame({ type, code: e.code, message: e.message }));
      closeGracefully(stream);
    } else stream.destroy();
  }

  /** The digest the sender announced up front, if it did. */
  get announcedSha256(): string | null {
    return this.#sha256;
  }
}
