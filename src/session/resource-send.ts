/**
 * An outgoing resource (Multipeer's `sendResource(at:withName:toPeer:)` → Progress).
 *
 * The name is checked before anything is opened, so a hostile or unportable name fails
 * at once with ERR_RESOURCE_NAME and nothing reaches the peer. The body is hashed while
 * it is sent (one read of the source) and written with the stream's backpressure; the
 * receiver's answer is read concurrently, so a receiver that fails mid-way (quota, disk
 * full) is reported with its own code rather than as a broken pipe.
 *
 * Resuming (resource-prefix.ts): the header says the sender can resume; a receiver holding a
 * partial file of this name and size answers with its block digests, and the sender hashes the
 * same ranges of its own source (a local read, no bytes sent) and continues from the first
 * block that differs, its end-to-end hash already holding the prefix. A transfer whose peer is
 * lost mid-way pauses (state `paused`) and starts over this way when the peer is connected
 * again, up to `resumeTimeout`.
 */
import type { Duplex, Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { PeerlinkError, isPeerlinkError } from '../errors.js';
import { resourceNameProblem, validateResourceName } from './resource-name.js';
import { openResourceSource } from './resource-source.js';
import { TransferBase } from './resource-progress.js';
import { RESOURCE_PROTOCOL_VERSION, ResourceStreamReader, encodeFrame, type ResourceFrame, type ResumeOffer } from './resource-wire.js';
import { closeGracefully, waitDrain, asTransferError } from './resource-stream.js';
import { matchPrefix } from './resource-prefix.js';
import { OffThreadHash, createBodyHash, type BodyHash } from './resource-hash.js';
import type { Hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeManifest, walkFolder, type FolderManifest, type SkippedEntry } from './resource-folder-manifest.js';
import { planFolderResume, type FolderResumePlan } from './resource-folder-resume.js';
import { sendFolderFiles } from './resource-folder-send.js';
import { isHttpSource } from './resource-source.js';
import { fsPromises } from '../lazy-builtins.js';

/** What a folder transfer did beyond its bytes (sender and receiver alike). */
export interface FolderSummary {
  files: number;
  dirs: number;
  /** Symlinks (never followed), special files and unportable names the sender left out. */
  skipped: SkippedEntry[];
  /** Files that changed while they were sent: the receiver dropped them. */
  changed: string[];
}

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
  /**
   * How long a transfer whose peer was lost mid-way waits (state `paused`) for the peer to be
   * connected again before it fails with ERR_RESOURCE_PEER_LOST, ms; 0 fails at once with
   * ERR_RESOURCE_ABORTED. Default: the session's `resources.resumeTimeout` (600 000 = 10 min).
   */
  resumeTimeout?: number;
}

/** Waits until `peer` is connected (resolves at once if it is); rejects when `signal` aborts. */
export type WaitConnected = (signal: AbortSignal) => Promise<void>;

export interface SentResource {
  /** The name it was sent under. */
  name: string;
  /**
   * The name the receiver saved it under: `name`, or a numbered variant when that was
   * taken (`photo (1).jpg`). Equal to `name` with a receiver that predates this field.
   */
  savedName: string;
  size: number;
  /** SHA-256 (hex) of the bytes sent, confirmed by the receiver (a folder: of its manifest; each file is verified on its own). */
  sha256: string;
  /** Present when a folder was sent. */
  folder?: FolderSummary;
}

export type OpenResourceStream = () => Duplex | Promise<Duplex>;

/** How long the sender waits for the receiver to accept or refuse after the header, by default. */
export const DEFAULT_ACCEPT_TIMEOUT_MS = 300_000;
/** How long a paused transfer waits for its peer by default (10 min). */
export const DEFAULT_RESUME_TIMEOUT_MS = 600_000;
/** A peer still shown as connected right after its stream broke is tried again after this long. */
const RETRY_DELAY_MS = 1000;

/** Bytes of body queued on the stream before the sender waits for it to drain. */
const SEND_AHEAD = 2 * 1024 * 1024;

/** Failures the receiver reported itself: final, never a reason to pause. */
const remoteFailures = new WeakSet<PeerlinkError>();

export class ResourceTransfer<P = unknown> extends TransferBase<P, SentResource> {
  readonly direction = 'send' as const;
  readonly #name: string;
  readonly #abort = new AbortController();
  readonly #waitConnected: WaitConnected | undefined;
  readonly #takesFolders: (() => boolean) | undefined;
  #streamOpened = false;
  /** cancel() (the receiver drops its partial file) rather than stop() (it keeps it). */
  #discard = false;

  constructor(source: string | URL, name: string, peer: P, open: OpenResourceStream, options: SendResourceOptions = {}, waitConnected?: WaitConnected, takesFolders?: () => boolean) {
    super(peer);
    this.#name = name;
    this.#waitConnected = waitConnected;
    this.#takesFolders = takesFolders;
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
    this.#discard = true;
    this.#abort.abort();
  }

  /**
   * Stops the transfer but leaves the receiver its partial file, so sending the same file
   * later resumes (what a closing session does). `done` rejects with ERR_CANCELLED.
   */
  stop(): void {
    this.#abort.abort();
  }

  async #run(source: string | URL, open: OpenResourceStream, options: SendResourceOptions): Promise<SentResource> {
    const signal = this.#abort.signal;
    validateResourceName(this.#name);
    if (options.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(options.sha256))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'sha256 must be 64 lower-case hex digits');
    const acceptTimeout = options.acceptTimeout ?? DEFAULT_ACCEPT_TIMEOUT_MS;
    if (!(Number.isFinite(acceptTimeout) && acceptTimeout > 0)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `acceptTimeout must be a positive number of ms, got ${String(acceptTimeout)}`);
    const resumeTimeout = options.resumeTimeout ?? DEFAULT_RESUME_TIMEOUT_MS;
    if (!(Number.isFinite(resumeTimeout) && resumeTimeout >= 0)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `resumeTimeout must be a number of ms ≥ 0, got ${String(resumeTimeout)}`);
    // A local directory travels as one folder transfer (docs/resources.md "Folders"), walked once:
    // a resume offers the same manifest again.
    const folderRoot = await localDirectory(source);
    let folder: FolderManifest | undefined;
    if (folderRoot !== undefined) {
      if (this.#takesFolders && !this.#takesFolders())
        throw new PeerlinkError('ERR_RESOURCE_UNSUPPORTED', 'the receiver does not understand folders (an earlier version of peerlink): send the files one by one, or update it');
      folder = await walkFolder(folderRoot, signal);
    }
    /** When the current pause began (reset once a body gets going again). */
    let pausedSince: number | undefined;
    for (;;) {
      if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
      try {
        const progressing = (): void => void (pausedSince = undefined);
        if (folderRoot !== undefined && folder !== undefined) return await this.#sendFolder(folderRoot, folder, open, acceptTimeout, pausedSince !== undefined, progressing);
        return await this.#attempt(source, open, options, acceptTimeout, pausedSince !== undefined, progressing);
      } catch (err) {
        const e = asTransferError(err, signal.aborted, this.#streamOpened);
        const lost = this.#streamOpened && !signal.aborted && !remoteFailures.has(e) && (e.code === 'ERR_RESOURCE_ABORTED' || e.code === 'ERR_PEER_NOT_CONNECTED');
        if (!lost || resumeTimeout === 0 || this.#waitConnected === undefined) throw e;
        if (pausedSince === undefined) {
          pausedSince = Date.now();
          this.setState('paused');
          this.pausedOrResumed({ paused: e });
        }
        await this.#waitForPeer(pausedSince + resumeTimeout, resumeTimeout);
      }
    }
  }

  /** Waits for the peer to be connected again, until `deadline`; fails with ERR_RESOURCE_PEER_LOST after it. */
  async #waitForPeer(deadline: number, resumeTimeout: number): Promise<void> {
    const signal = this.#abort.signal;
    const waiting = new AbortController();
    const left = deadline - Date.now();
    const lostAfter = (): PeerlinkError =>
      new PeerlinkError('ERR_RESOURCE_PEER_LOST', `the peer did not come back within ${Math.round(resumeTimeout / 1000)} s; the receiver keeps what it has: send the file again to resume it`);
    if (left <= 0) throw lostAfter();
    const timer = setTimeout(() => waiting.abort(), left);
    timer.unref();
    const onAbort = (): void => waiting.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const began = Date.now();
    try {
      await this.#waitConnected!(waiting.signal);
      // Still "connected" at once: the session has not noticed the loss yet (keepalive), or the
      // stream broke on a live connection. Either way, not straight back at it.
      if (Date.now() - began < RETRY_DELAY_MS) await delay(RETRY_DELAY_MS, waiting.signal);
    } catch {
      if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
      throw lostAfter();
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
    if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
  }

  async #attempt(source: string | URL, open: OpenResourceStream, options: SendResourceOptions, acceptTimeout: number, resuming: boolean, progressing: () => void): Promise<SentResource> {
    const signal = this.#abort.signal;
    const sourceOptions = { ...(options.ca === undefined ? {} : { ca: options.ca }), signal };
    const src = await openResourceSource(source, sourceOptions);
    this.setTotal(src.size);
    let stream: Duplex | undefined;
    let body = src.body;
    let bodyStarted = false;
    const onAbort = (): void => {
      body.destroy();
      // A cancel mid-body ends the stream cleanly (the receiver drops its partial file); a stop,
      // or a cancel before the body, breaks it (the receiver keeps what it has / withdraws the offer).
      if (stream && this.#discard && bodyStarted) closeGracefully(stream);
      else stream?.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      stream = await open();
      this.#streamOpened = true;
      if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
      stream.on('error', () => undefined); // failures surface through the reader and writes
      const reader = new ResourceStreamReader(stream);
      if (!resuming) this.published();
      stream.write(encodeFrame({ type: 'resource', v: RESOURCE_PROTOCOL_VERSION, name: this.#name, size: src.size, sha256: options.sha256 ?? null, resume: 1 }));
      // Nothing of the body is sent until the receiver's app has said yes.
      if (!resuming) this.setState('awaitingAcceptance');
      const first = await withTimeout(reader.frame(), acceptTimeout, `the receiver did not accept the offer within ${Math.round(acceptTimeout / 1000)} s`);
      if (first.type === 'reject' || first.type === 'error') throw remoteFailure(first);
      if (first.type !== 'accept') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected accept, got ${first.type}`);
      if (first.offset !== 0) throw new PeerlinkError('ERR_PROTOCOL', 'resource stream: the receiver asked for an offset outside the resume exchange');
      let offset = 0;
      let hash: Hash | undefined;
      if (first.resume) {
        ({ offset, hash } = await this.#proveResume(first.resume, src.size, src.body));
        if (offset > 0 || first.resume.have > 0) {
          // The prefix check read part of the body: the rest comes from a fresh read at `offset`.
          src.body.destroy();
          const rest = await openResourceSource(source, { ...sourceOptions, start: offset });
          body = rest.body;
          if (rest.size !== src.size) throw new PeerlinkError('ERR_RESOURCE_SOURCE', `the source changed size while it was sent (${src.size} → ${rest.size} bytes)`);
        }
        stream.write(encodeFrame({ type: 'resume', offset, sha256: hash.copy().digest('hex') }));
      }
      bodyStarted = true;
      progressing();
      return await this.#exchange(stream, reader, body, src.size, offset, hash, resuming);
    } catch (err) {
      body.destroy();
      src.body.destroy();
      if (stream && !(this.#discard && bodyStarted)) stream.destroy();
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #sendFolder(root: string, manifest: FolderManifest, open: OpenResourceStream, acceptTimeout: number, resuming: boolean, progressing: () => void): Promise<SentResource> {
    const signal = this.#abort.signal;
    this.setTotal(manifest.size);
    const manifestBytes = encodeManifest(manifest);
    const sha256 = createHash('sha256').update(manifestBytes).digest('hex');
    let stream: Duplex | undefined;
    let bodyStarted = false;
    // A cancel mid-body ends the stream cleanly (the receiver drops the partial folder); a stop,
    // or anything before the body, breaks it (the receiver keeps what it has).
    const onAbort = (): void => {
      if (stream && this.#discard && bodyStarted) closeGracefully(stream);
      else stream?.destroy();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      stream = await open();
      this.#streamOpened = true;
      if (signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
      stream.on('error', () => undefined);
      const reader = new ResourceStreamReader(stream);
      if (!resuming) this.published();
      stream.write(encodeFrame({ type: 'folder', v: RESOURCE_PROTOCOL_VERSION, name: this.#name, files: manifest.files, dirs: manifest.dirs, size: manifest.size, manifest: manifestBytes.length, resume: 1 }));
      if (!stream.write(manifestBytes)) await waitDrain(stream);
      if (!resuming) this.setState('awaitingAcceptance');
      const first = await withTimeout(reader.frame(), acceptTimeout, `the receiver did not accept the offer within ${Math.round(acceptTimeout / 1000)} s`);
      if (first.type === 'reject' || first.type === 'error') throw remoteFailure(first);
      if (first.type !== 'accept' || first.offset !== 0) throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected accept, got ${first.type}`);
      let plan: FolderResumePlan | undefined;
      if (first.folder) {
        // What the receiver holds of this folder: proved with our own files (a local read), then skipped.
        plan = await planFolderResume(root, manifest, first.folder, signal);
        stream.write(encodeFrame({ type: 'folder-resume', held: plan.proof, offset: plan.file?.offset ?? 0, sha256: (plan.file?.hash ?? createHash('sha256')).copy().digest('hex') }));
      }
      bodyStarted = true;
      progressing();
      this.setState('transferring');
      this.startBody(plan?.kept ?? 0);
      if ((plan?.kept ?? 0) > 0 || resuming) this.pausedOrResumed({ resumed: plan?.kept ?? 0 });
      const answer = reader.frame();
      answer.catch(() => undefined);
      let early = false;
      void answer.then((f) => (early = f.type === 'error' || f.type === 'reject'), () => undefined);
      let changed: string[];
      try {
        changed = await sendFolderFiles(
          stream,
          root,
          manifest,
          {
            advance: (n) => this.advance(n),
            file: (e, done) => this.safeEmit('file', { path: e.path, size: e.size, done, files: manifest.files }),
            stopped: () => early,
            signal,
          },
          plan && { skip: plan.skip, ...(plan.file ? { file: plan.file } : {}) },
        );
      } catch (err) {
        const f = await withTimeout(answer, 1000, '').catch(() => undefined);
        if (f && (f.type === 'error' || f.type === 'reject')) throw remoteFailure(f);
        throw asSourceError(err);
      }
      this.setState('verifying');
      const result = await answer;
      if (result.type === 'error' || result.type === 'reject') throw remoteFailure(result);
      if (result.type !== 'folder-done') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected folder-done, got ${result.type}`);
      if (result.files !== manifest.files || result.size !== manifest.size) throw new PeerlinkError('ERR_RESOURCE_VERIFY', 'the receiver confirmed a different folder than was sent');
      if (resourceNameProblem(result.name) !== null) throw new PeerlinkError('ERR_PROTOCOL', 'the receiver reported an invalid saved name');
      closeGracefully(stream);
      return { name: this.#name, savedName: result.name, size: manifest.size, sha256, folder: { files: manifest.files, dirs: manifest.dirs, skipped: manifest.skipped, changed } };
    } catch (err) {
      if (stream && !(this.#discard && bodyStarted)) stream.destroy();
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** The receiver's digests against our own bytes: where to continue, and our hash of what comes before. */
  async #proveResume(offer: ResumeOffer, size: number, body: Readable): Promise<{ offset: number; hash: Hash }> {
    if (offer.have > size) throw new PeerlinkError('ERR_PROTOCOL', `resource stream: the receiver claims ${offer.have} bytes of a ${size}-byte file`);
    return matchPrefix(body as AsyncIterable<Buffer>, offer.block, offer.digests, offer.have, this.#abort.signal);
  }

  async #exchange(stream: Duplex, reader: ResourceStreamReader, body: Readable, size: number, offset: number, prefixHash: Hash | undefined, resuming: boolean): Promise<SentResource> {
    this.setState('transferring');
    this.startBody(offset);
    if (offset > 0 || resuming) this.pausedOrResumed({ resumed: offset });

    // The receiver's final answer — or an early failure — can arrive while we send.
    const answer = reader.frame();
    answer.catch(() => undefined);
    let early: ResourceFrame | undefined;
    void answer.then((f) => {
      early = f;
      if (f.type === 'error' || f.type === 'reject') body.destroy();
    }, () => undefined);

    // A resumed body continues the prefix's hash in line; one from byte 0 (no prefix, or an
    // empty one) may be hashed off the main thread.
    const body0 = offset === 0 ? createBodyHash(size) : undefined;
    const hash: BodyHash = body0 ?? prefixHash ?? createBodyHash(size);
    let sent = offset;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (early) break;
        const hashing = body0 instanceof OffThreadHash ? body0.room(chunk.length) : undefined;
        if (hashing) await hashing;
        hash.update(chunk);
        sent += chunk.length;
        stream.write(chunk);
        this.advance(chunk.length);
        // The stream's own mark (256 KiB) is below one file chunk: waiting at it would empty
        // the pipe after every read. Up to SEND_AHEAD stays queued while the next chunk is hashed.
        if (stream.writableLength >= SEND_AHEAD) await waitDrain(stream);
      }
    } catch (err) {
      // A write failed or the source broke: prefer the receiver's explanation if it sent one.
      const f = early ?? (await withTimeout(answer, 1000, '').catch(() => undefined));
      if (f && (f.type === 'error' || f.type === 'reject')) throw remoteFailure(f);
      // Write failures are already PeerlinkErrors (waitDrain); anything else came from the source.
      body0?.dispose();
      throw asSourceError(err);
    }
    if ((early && (early.type === 'error' || early.type === 'reject')) || sent !== size) body0?.dispose();
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

/** The path of a local directory source, or undefined (a file, a URL, or nothing there: the file path reports it). */
async function localDirectory(source: string | URL): Promise<string | undefined> {
  if (isHttpSource(source)) return undefined;
  let path: string;
  try {
    path = source instanceof URL ? fileURLToPath(source) : /^file:/i.test(source) ? fileURLToPath(source) : source;
  } catch {
    return undefined;
  }
  const st = await fsPromises().stat(path).catch(() => undefined);
  return st?.isDirectory() ? path : undefined;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('aborted'));
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function remoteFailure(f: { type: 'reject' | 'error'; code: PeerlinkError['code']; message: string }): PeerlinkError {
  const what = f.type === 'reject' ? 'the receiver refused the resource' : 'the receiver failed the transfer';
  const e = new PeerlinkError(f.code, `${what}: ${f.message || f.code}`);
  remoteFailures.add(e);
  return e;
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
