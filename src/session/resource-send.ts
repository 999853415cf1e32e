/**
 * An outgoing resource (Multipeer's `sendResource(at:withName:toPeer:)` → Progress).
 *
 * The name is checked before anything is opened, so a hostile or unportable name fails
 * at once with ERR_RESOURCE_NAME and nothing reaches the peer. The body is hashed while
 * it is sent (one read of the source) and written with the stream's backpressure; the
 * receiver's answer is read concurrently, so a receiver that fails mid-way (quota, disk
 * full) is reported with its own code rather than as a broken pipe.
 */
import type { Duplex, Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { PeerlinkError, isPeerlinkError } from '../errors.js';
import { resourceNameProblem, validateResourceName } from './resource-name.js';
import { openResourceSource } from './resource-source.js';
import { TransferBase } from './resource-progress.js';
import { RESOURCE_PROTOCOL_VERSION, ResourceStreamReader, encodeFrame, type ResourceFrame } from './resource-wire.js';
import { closeGracefully, waitDrain, asTransferError } from './resource-stream.js';

export interface SendResourceOptions {
  /** Cancels the transfer (done rejects with ERR_CANCELLED). */
  signal?: AbortSignal;
  /** The SHA-256 (hex) of the resource if already known; sent in the header and checked by both sides. */
  sha256?: string;
  /** https: sources only: extra trusted CA certificates (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * How long to wait for the receiver to accept or refuse the offer, ms (its app may ask
   * a person). Default: the session's `resources.acceptTimeout` (300 000 = 5 min).
   */
  acceptTimeout?: number;
}

export interface SentResource {
  /** The name it was sent under. */
  name: string;
  /**
   * The name the receiver saved it under: `name`, or a numbered variant when that was
   * taken (`photo (1).jpg`). Equal to `name` with a receiver that predates this field.
   */
  savedName: string;
  size: number;
  /** SHA-256 (hex) of the bytes sent, confirmed by the receiver. */
  sha256: string;
}

export type OpenResourceStream = () => Duplex | Promise<Duplex>;

/** How long the sender waits for the receiver to accept or refuse after the header, by default. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 300_000;

export class ResourceTransfer<P = unknown> extends TransferBase<P, SentResource> {
  readonly direction = 'send' as const;
  readonly #name: string;
  readonly #abort = new AbortController();
  #streamOpened = false;

  constructor(source: string | URL, name: string, peer: P, open: OpenResourceStream, options: SendResourceOptions = {}) {
    super(peer);
    this.#name = name;
    if (options.signal) {
      if (options.signal.aborted) this.#abort.abort();
      else options.signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
    // Started on the next tick so a caller can attach listeners first.
    queueMicrotask(() => {
      this.#run(source, open, options).then(
        (r) => this.succeed(r),
        (err: unknown) => this.fail(asTransferError(err, this.#abort.signal.aborted, this.#streamOpened)),
      );
    });
  }

  get name(): string {
    return this.#name;
  }

  /** Stops the transfer; the receiver removes its partial file. */
  cancel(): void {
    this.#abort.abort();
  }

  async #run(source: string | URL, open: OpenResourceStream, options: SendResourceOptions): Promise<SentResource> {
    const signal = this.#abort.signal;
    validateResourceName(this.#name);
    if (options.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(options.sha256))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'sha256 must be 64 lower-case hex digits');
    const acceptTimeout = options.acceptTimeout ?? DEFAULT_ACCEPT_TIMEOUT_MS;
    if (!(Number.isFinite(acceptTimeout) && acceptTimeout > 0)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `acceptTimeout must be a positive number of ms, got ${String(acceptTimeout)}`);
    if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
    const src = await openResourceSource(source, options.ca === undefined ? { signal } : { signal, ca: options.ca });
    this.setTotal(src.size);
    let stream: Duplex | undefined;
    const onAbort = (): void => {
      src.body.destroy();
      stream?.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      stream = await open();
      this.#streamOpened = true;
      if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
      stream.on('error', () => undefined); // failures surface through the reader and writes
      return await this.#exchange(stream, src.body, src.size, options.sha256 ?? null, acceptTimeout);
    } catch (err) {
      src.body.destroy();
      stream?.destroy();
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #exchange(stream: Duplex, body: Readable, size: number, headerSha256: string | null, acceptTimeout: number): Promise<SentResource> {
    const reader = new ResourceStreamReader(stream);
    this.published();
    stream.write(encodeFrame({ type: 'resource', v: RESOURCE_PROTOCOL_VERSION, name: this.#name, size, sha256: headerSha256 }));
    // Nothing of the body is sent until the receiver's app has said yes.
    this.setState('awaitingAcceptance');
    const first = await withTimeout(reader.frame(), acceptTimeout, `the receiver did not accept the offer within ${Math.round(acceptTimeout / 1000)} s`);
    if (first.type === 'reject' || first.type === 'error') throw remoteFailure(first);
    if (first.type !== 'accept') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected accept, got ${first.type}`);
    if (first.offset !== 0) throw new PeerlinkError('ERR_PROTOCOL', 'resource stream: the receiver asked to resume, which this version does not do');
    this.setState('transferring');
    this.advance(0, true);

    // The receiver's final answer — or an early failure — can arrive while we send.
    const answer = reader.frame();
    answer.catch(() => undefined);
    let early: ResourceFrame | undefined;
    void answer.then((f) => {
      early = f;
      if (f.type === 'error' || f.type === 'reject') body.destroy();
    }, () => undefined);

    const hash = createHash('sha256');
    let sent = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (early) break;
        hash.update(chunk);
        sent += chunk.length;
        const more = stream.write(chunk);
        this.advance(chunk.length);
        if (!more) await waitDrain(stream);
      }
    } catch (err) {
      // A write failed or the source broke: prefer the receiver's explanation if it sent one.
      const f = early ?? (await withTimeout(answer, 1000, '').catch(() => undefined));
      if (f && (f.type === 'error' || f.type === 'reject')) throw remoteFailure(f);
      // Write failures are already PeerlinkErrors (waitDrain); anything else came from the source.
      throw asSourceError(err);
    }
    if (early && (early.type === 'error' || early.type === 'reject')) throw remoteFailure(early);
    if (sent !== size) throw new PeerlinkError('ERR_RESOURCE_SOURCE', `the source ended after ${sent} of ${size} bytes (was the file changed while sending?)`);
    // A digest that differs from the header's is still sent: the receiver then fails the
    // transfer with ERR_RESOURCE_VERIFY and says so, so both sides report the same code.
    const sha256 = hash.digest('hex');
    stream.write(encodeFrame({ type: 'end', sha256 }));
    this.setState('verifying');
    const result = await answer;
    if (result.type === 'error' || result.type === 'reject') throw remoteFailure(result);
    if (result.type !== 'done') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected done, got ${result.type}`);
    if (result.sha256 !== sha256 || result.size !== size)
      throw new PeerlinkError('ERR_RESOURCE_VERIFY', 'the receiver confirmed a different size or digest than was sent');
    // The saved name is shown to the user: it must be a name the receiver could have saved.
    if (result.name !== undefined && resourceNameProblem(result.name) !== null)
      throw new PeerlinkError('ERR_PROTOCOL', 'the receiver reported an invalid saved name');
    closeGracefully(stream);
    return { name: this.#name, savedName: result.name ?? this.#name, size, sha256 };
  }
}

function remoteFailure(f: { type: 'reject' | 'error'; code: PeerlinkError['code']; message: string }): PeerlinkError {
  const what = f.type === 'reject' ? 'the receiver refused the resource' : 'the receiver failed the transfer';
  return new PeerlinkError(f.code, `${what}: ${f.message || f.code}`);
}

function asSourceError(err: unknown): PeerlinkError {
  if (isPeerlinkError(err)) return err;
  return new PeerlinkError('ERR_RESOURCE_SOURCE', `reading the resource failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new PeerlinkError('ERR_TIMEOUT', what)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}
