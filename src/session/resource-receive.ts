/**
 * An incoming resource (Multipeer's didStartReceivingResource / didFinishReceivingResource).
 *
 * The header is an *offer*: nothing is written until the app has accepted it — by a
 * `resource` listener (having one is consent), or by the `accept` callback, which may
 * take as long as a person needs (up to `acceptTimeout`). With neither, or a "no", the
 * sender is refused with ERR_RESOURCE_REFUSED before a byte is written. Then the name
 * is judged and the space reserved; a refusal is sent back with its code, so both sides
 * fail the same way. The body is copied from the stream to the sink chunk by chunk,
 * waiting for the disk whenever the sink is full, which stops reading the stream and so
 * slows the sender. A sender that goes silent for `idleTimeout` fails the transfer: its
 * reservation is released and its partial file kept for resuming.
 *
 * Resuming (resource-prefix.ts): for a sender that can resume, the accept carries the block
 * digests of the partial file of this name and size, and the sender's RESUME names the offset
 * and the SHA-256 of the prefix; the receiver keeps the prefix only if that digest is its own
 * bytes' — at a boundary it offered — and otherwise fails the transfer and drops the partial.
 * An interruption (the stream lost, the sender silent, our session closing) keeps the partial
 * file; a cancel on either side, a failed verification or a refusal removes it.
 */
import type { Duplex } from 'node:stream';
import { createHash } from 'node:crypto';
import { PeerlinkError } from '../errors.js';
import type { PeerID } from './peer-id.js';
import { describe, validateResourceName } from './resource-name.js';
import { TransferBase } from './resource-progress.js';
import type { ResourceStore } from './resource-store.js';
import { SINK_QUEUE_MAX, SINK_QUEUE_RESUME, type PlacedResource, type ResourceSink } from './resource-sink.js';
import { ResourceStreamReader, encodeFrame, type ResumeOffer } from './resource-wire.js';
import { RESUME_BLOCK_MIN } from './resource-prefix.js';
import { createBodyHash } from './resource-hash.js';
import { IdleWatch, asTransferError, closeGracefully } from './resource-stream.js';
import type { FolderSummary } from './resource-send.js';
import type { BudgetName } from './budgets.js';
import { parseManifest, type FolderLimits, type FolderManifest } from './resource-folder-manifest.js';
import { makeStaging, placeFolder, receiveFolderFiles, removeStaging, syncFolder, type FolderReceiveResume } from './resource-folder-receive.js';
import { FolderJournal, JOURNAL_NAME, folderPartialName, heldProof, manifestFiles, openFolderPartial, toRanges, type FolderPartial } from './resource-folder-resume.js';
import { FOLDER_RECORD_NAME } from './resource-folder-partial.js';
import type { FolderHeader, FolderResumeOffer } from './resource-wire.js';
import { join } from 'node:path';
import { fsPromises } from '../lazy-builtins.js';

/** A received resource; `folder` when a folder was received (then `path` is the folder's and `sha256` its manifest's). */
/**
 * The sender's answer to our resume offer. Before it answers it hashes as much of its data as
 * we hold (a file's prefix, a folder's held files): that is not silence, but it is bounded — by
 * the idle timeout plus the bytes held at a slow disk's hashing rate.
 */
async function resumeAnswer(reader: ResourceStreamReader, idle: IdleWatch, idleTimeout: number, heldBytes: number): ReturnType<ResourceStreamReader['frame']> {
  idle.pause();
  const limit = idleTimeout + Math.ceil((heldBytes / RESUME_HASH_BYTES_PER_S) * 1000);
  const timer = setTimeout(() => reader.interrupt(new PeerlinkError('ERR_TIMEOUT', `the sender did not answer the resume offer within ${Math.round(limit / 1000)} s`)), limit);
  timer.unref();
  try {
    return await reader.frame();
  } finally {
    clearTimeout(timer);
    idle.resume();
  }
}

export type ReceivedResource = PlacedResource & { folder?: FolderSummary };

/**
 * A folder's manifest, `length` bytes. The header timeout has ended and the idle watch of the
 * body has not begun: a sender that stalls here is dropped as a silent one (ERR_TIMEOUT after
 * idleTimeout with fewer than minProgressBytes), or it would hold what it sent of the manifest
 * (up to folderManifestBytes) and its transfer slot for as long as it stays connected.
 */
async function readManifest(reader: ResourceStreamReader, length: number, policy: Pick<IncomingPolicy<unknown>, 'idleTimeout' | 'minProgressBytes'>): Promise<Buffer> {
  const idle = new IdleWatch(
    policy.idleTimeout,
    () => reader.interrupt(new PeerlinkError('ERR_TIMEOUT', `the sender sent less than ${policy.minProgressBytes} bytes of its folder's manifest in ${Math.round(policy.idleTimeout / 1000)} s; the transfer was dropped`)),
    Math.min(policy.minProgressBytes, Math.max(1, length)),
  );
  try {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < length) {
      const c = await reader.chunk(Math.min(length - have, MAX_PIECE));
      if (c === null) throw new PeerlinkError('ERR_RESOURCE_ABORTED', 'the peer closed the resource stream early');
      parts.push(c);
      have += c.length;
      idle.touch(c.length);
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
  } finally {
    idle.stop();
  }
}

/**
 * What a peer offers to send, for the app (or a person) to accept or refuse. One file
 * today; a folder would list its files here, and a resumed transfer would add its offset.
 */
export interface ResourceOffer<P = PeerID> {
  readonly peer: P;
  /**
   * `held`: bytes of this file the receiver already holds from an interrupted transfer, which a
   * sender that can resume will not send again if they prove to be its own (0 or absent: none).
   */
  readonly files: ReadonlyArray<{ readonly name: string; readonly size: number; readonly held?: number }>;
  /** A folder: its name (each of `files` is a path under it, `/`-separated), directories and what the sender skipped. */
  readonly folder?: { readonly name: string; readonly dirs: number; readonly skipped: ReadonlyArray<{ readonly path: string; readonly why: string }> };
  readonly totalBytes: number;
  /** Aborted when the offer goes away before a decision (the sender gave up or left, the time ran out, the session closed). */
  readonly signal?: AbortSignal;
}

/** The app's decision on an offer: true accepts it. */
export type AcceptResource<P = PeerID> = (offer: ResourceOffer<P>) => boolean | Promise<boolean>;

/** How an incoming resource is decided and timed (from the session's options and budgets). */
export interface IncomingPolicy<P> {
  /** Tells the app (the session emits `resource`). */
  announce: (incoming: IncomingResource<P>) => void;
  /** Whether the app listens for incoming resources (a listener is consent). */
  listening: () => boolean;
  accept?: AcceptResource<P> | undefined;
  /** How long the app may take to decide, ms. */
  acceptTimeout: number;
  /** Silence from the sender, once accepted, after which the transfer fails, ms. */
  idleTimeout: number;
  /** Bytes that count as progress within idleTimeout (less is silence). */
  minProgressBytes: number;
  /** The sending peer's key: a new transfer of the same file from the same owner takes over a stalled one's partial file. */
  owner?: string | undefined;
  /** Set when the transfer is refused at once (a budget): sent to the sender as the answer to its offer. */
  refusal?: PeerlinkError | undefined;
  /** Tells the app an offer was refused before it was accepted (the session emits `resourceRefused`). */
  refused?: ((offer: RefusedOffer<P>, error: PeerlinkError) => void) | undefined;
  /** Bounds on an incoming folder's manifest (budgets folderEntries, folderManifestBytes, folderDepth). */
  folderLimits?: FolderLimits | undefined;
  /**
   * Holds `bytes` of the session-wide manifest budget (folderManifestBytesTotal) for this folder:
   * returns its release, or undefined when the budget is used up (the folder is refused).
   */
  holdManifest?: ((bytes: number) => (() => void) | undefined) | undefined;
  /** Counts a budget refusal (the session's ledger). */
  exceeded?: ((budget: BudgetName, detail: string) => void) | undefined;
}

/** An offer the receiver refused (its name and size as the sender announced them). */
export interface RefusedOffer<P = unknown> {
  readonly peer: P;
  readonly name: string;
  readonly size: number;
}

/** Failures that interrupt a transfer rather than end it: its partial file is kept for resuming. */
const KEEP_ON: ReadonlySet<string> = new Set(['ERR_RESOURCE_ABORTED', 'ERR_TIMEOUT', 'ERR_CLOSED']);

/** The rate a resuming sender is granted to hash the prefix we hold before it answers (50 MB/s: a slow disk). */
const RESUME_HASH_BYTES_PER_S = 50e6;

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
  #folder: FolderManifest | undefined;
  readonly #stream: Duplex;

  /**
   * Starts reading `stream`. Without an `accept` callback, `announce` is called once the
   * header is known (name and size set), before the name is judged, so an app also hears
   * of refused names (their `done` rejects with ERR_RESOURCE_NAME); with one, only offers
   * it accepted are announced.
   */
  constructor(stream: Duplex, peer: P, store: ResourceStore, policy: IncomingPolicy<P>) {
    super(peer);
    this.#stream = stream;
    stream.on('error', () => undefined); // failures surface through the reader
    this.#run(store, policy).then(
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

  /** A folder's manifest (its files and directories, what the sender skipped); undefined for a file. */
  get folder(): Readonly<FolderManifest> | undefined {
    return this.#folder;
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

  async #run(store: ResourceStore, policy: IncomingPolicy<P>): Promise<ReceivedResource> {
    const stream = this.#stream;
    if (policy.refusal) {
      // Answered without reading the offer: the sender reads this as the reply to it.
      this.#tell('reject', policy.refusal);
      throw policy.refusal;
    }
    const reader = new ResourceStreamReader(stream);
    let header;
    const timer = setTimeout(() => stream.destroy(new PeerlinkError('ERR_TIMEOUT', 'the peer opened a resource stream but sent no header')), HEADER_TIMEOUT_MS);
    timer.unref();
    try {
      header = await reader.frame();
    } finally {
      clearTimeout(timer);
    }
    if (header.type === 'folder') return this.#receiveFolder(header, reader, store, policy);
    if (header.type !== 'resource') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected a header, got ${header.type}`);
    this.#name = header.name;
    this.#sha256 = header.sha256;
    this.setTotal(header.size);
    this.published();
    await this.#consent(store, policy, header.name, header.size, header.resume === 1);
    if (this.#cancelled) throw this.#cancelled;
    const resumable = header.resume === 1;
    try {
      this.#sink = await store.openPartial(header.name, header.size, header.sha256, {
        resume: resumable,
        ...(policy.owner === undefined ? {} : { owner: policy.owner }),
        onSuperseded: () => reader.interrupt(new PeerlinkError('ERR_RESOURCE_ABORTED', 'the same file is being sent again')),
      });
    } catch (err) {
      const e = asTransferError(err, false);
      this.#tell('reject', e);
      throw e;
    }
    const sink = this.#sink;
    sink.on('error', () => undefined); // reported through write callbacks / commit
    // From here the sender owes us bytes: silence for idleTimeout ends the transfer.
    const idle = new IdleWatch(
      policy.idleTimeout,
      () => reader.interrupt(new PeerlinkError('ERR_TIMEOUT', `the sender sent less than ${policy.minProgressBytes} bytes in ${Math.round(policy.idleTimeout / 1000)} s; the transfer was dropped`)),
      // what is left may be less than the minimum: its arrival is progress too
      Math.min(policy.minProgressBytes, header.size),
    );
    /** The sender ended its side before the whole body: it gave up (cancelled), so nothing is kept. */
    let senderEnded = false;
    try {
      let offset = 0;
      if (resumable) {
        const prefix = sink.prefix;
        const offer: ResumeOffer = { have: prefix?.have ?? 0, block: prefix?.block ?? RESUME_BLOCK_MIN, digests: prefix?.digests ?? [] };
        stream.write(encodeFrame({ type: 'accept', offset: 0, resume: offer }));
        const answer = await resumeAnswer(reader, idle, policy.idleTimeout, offer.have);
        if (answer.type !== 'resume') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected resume, got ${answer.type}`);
        // Only a boundary we offered (where we hold a hash state), and only with our own bytes' digest.
        const state = prefix ? prefix.states.get(answer.offset) : answer.offset === 0 ? createHash('sha256') : undefined;
        if (!state) throw new PeerlinkError('ERR_PROTOCOL', `resource stream: the sender resumed at ${answer.offset}, which is not an offset the receiver offered`);
        const hash = state.copy();
        if (hash.copy().digest('hex') !== answer.sha256)
          throw new PeerlinkError('ERR_RESOURCE_VERIFY', `the sender's digest of the first ${answer.offset} bytes does not match the receiver's partial file`);
        offset = answer.offset;
        // From byte 0 nothing is continued: the body may be hashed off the main thread.
        await sink.startAt(offset, offset === 0 ? createBodyHash(header.size) : hash);
      } else {
        stream.write(encodeFrame({ type: 'accept', offset: 0 }));
        await sink.startAt(0, createBodyHash(header.size));
      }
      this.setState('transferring');
      this.startBody(offset);
      if (offset > 0) this.pausedOrResumed({ resumed: offset });
      let remaining = header.size - offset;
      while (remaining > 0) {
        // cancel() is honoured here even when the rest of the data has already arrived.
        if (this.#cancelled) throw this.#cancelled;
        const piece = await reader.chunk(Math.min(remaining, MAX_PIECE));
        if (piece === null) {
          senderEnded = true;
          throw new PeerlinkError('ERR_RESOURCE_ABORTED', `the peer stopped after ${header.size - remaining} of ${header.size} bytes`);
        }
        remaining -= piece.length;
        idle.touch(remaining === 0 ? Number.MAX_SAFE_INTEGER : piece.length);
        const hashing = sink.hashRoom(piece.length);
        if (hashing) {
          idle.pause();
          await hashing;
          idle.resume();
        }
        sink.write(piece);
        this.advance(piece.length);
        if (sink.queuedBytes >= SINK_QUEUE_MAX) {
          // Waiting for our own disk is not the sender's silence.
          idle.pause();
          await sink.room(SINK_QUEUE_RESUME);
          idle.resume();
        }
        if (sink.errored) throw sink.errored;
      }
      sink.end();
      this.setState('verifying');
      const trailer = await reader.frame();
      idle.stop();
      if (this.#cancelled) throw this.#cancelled;
      if (trailer.type !== 'end') throw new PeerlinkError('ERR_RESOURCE_VERIFY', `the peer sent more than the ${header.size} bytes it announced`);
      const placed = await sink.commit(trailer.sha256);
      stream.write(encodeFrame({ type: 'done', size: placed.size, sha256: placed.sha256, name: placed.name }));
      closeGracefully(stream);
      return placed;
    } catch (err) {
      idle.stop();
      const e = this.#cancelled ?? asTransferError(sink.errored && !(err instanceof PeerlinkError) ? sink.errored : err, false);
      // An interruption keeps the partial file for resuming; a cancel, a refusal or bad bytes do
      // not. A stream the sender ended cleanly before the trailer is a sender that gave up.
      if (stream.readableEnded) senderEnded = true;
      const keep = !senderEnded && KEEP_ON.has(e.code);
      await sink.abort(e, keep);
      this.#tell('error', e);
      throw e;
    }
  }

  /**
   * A folder: the manifest is read (bounded before a byte of it is read) and judged, offered
   * once as a whole, and its files written under a staging directory that moves into place
   * when every file is verified. Not resumed: an interrupted folder is removed.
   */
  async #receiveFolder(header: FolderHeader, reader: ResourceStreamReader, store: ResourceStore, policy: IncomingPolicy<P>): Promise<ReceivedResource> {
    const stream = this.#stream;
    this.#name = header.name;
    this.setTotal(header.size);
    this.published();
    const limits = policy.folderLimits ?? { entries: 100_000, manifestBytes: 16 * 1024 * 1024, depth: 64 };
    // Refused before the app was asked (name, budgets, manifest): the app hears of it as of a file's refusal.
    const refuseEarly = (e: PeerlinkError): never => {
      try {
        policy.refused?.(Object.freeze({ peer: this.peer, name: header.name, size: header.size }), e);
      } catch {
        // an app's listener throwing must not break the refusal
      }
      return refuse(e);
    };
    const refuse = (e: PeerlinkError): never => {
      this.#tell('reject', e);
      throw e;
    };
    const over = (budget: BudgetName, limit: number, what: string): never => {
      policy.exceeded?.(budget, what);
      return refuseEarly(new PeerlinkError('ERR_RESOURCE_QUOTA', `the folder's ${what} exceeds the receiver's limit of ${limit}`));
    };
    // The top folder's name is judged like a file's, before anything else is read.
    try {
      validateResourceName(header.name);
    } catch (err) {
      refuseEarly(asTransferError(err, false));
    }
    if (header.manifest > limits.manifestBytes) over('folderManifestBytes', limits.manifestBytes, `manifest of ${header.manifest} bytes`);
    if (header.files + header.dirs > limits.entries) over('folderEntries', limits.entries, `${header.files + header.dirs} entries`);
    // Held until the transfer ends (the parsed manifest is): other folders under way, from any peer, count too.
    const release = policy.holdManifest ? policy.holdManifest(header.manifest) : (): void => undefined;
    if (!release) {
      policy.exceeded?.('folderManifestBytesTotal', `manifest of ${header.manifest} bytes`);
      return refuseEarly(new PeerlinkError('ERR_RESOURCE_BUSY', "the receiver is taking other folders' manifests; send again when one has finished"));
    }
    void this.done.finally(release).catch(() => undefined);
    let manifest: FolderManifest;
    let manifestSha256: string;
    try {
      const raw = await readManifest(reader, header.manifest, policy);
      manifestSha256 = createHash('sha256').update(raw).digest('hex');
      manifest = parseManifest(raw, header, limits);
    } catch (err) {
      const e = asTransferError(err, false);
      if (e.code === 'ERR_PROTOCOL' && /more than \d+ entries/.test(e.message)) policy.exceeded?.('folderEntries', e.message);
      return refuseEarly(e);
    }
    this.#folder = manifest;
    const top = header.name;
    await this.#consent(
      store,
      policy,
      top,
      header.size,
      false,
      manifest.entries.filter((e) => e.kind === 'file').map((e) => Object.freeze({ name: `${top}/${e.path}`, size: e.size })),
      Object.freeze({ name: top, dirs: manifest.dirs, skipped: Object.freeze(manifest.skipped.map((x) => Object.freeze({ ...x }))) }),
    );
    if (this.#cancelled) throw this.#cancelled;
    let reservation;
    try {
      // A resumable folder's staging directory, once interrupted, counts against the quota until resumed.
      reservation = await store.reserve(header.size, header.resume === 1 ? { staging: folderPartialName(top, manifestSha256), name: top } : undefined);
    } catch (err) {
      return refuse(asTransferError(err, false));
    }
    let staging: string | undefined;
    const idle = new IdleWatch(
      policy.idleTimeout,
      () => reader.interrupt(new PeerlinkError('ERR_TIMEOUT', `the sender sent less than ${policy.minProgressBytes} bytes in ${Math.round(policy.idleTimeout / 1000)} s; the transfer was dropped`)),
      Math.min(policy.minProgressBytes, Math.max(1, header.size)),
    );
    let saved = 0;
    let keepStaging = false;
    let partial: FolderPartial | undefined;
    let journal: FolderJournal | undefined;
    /** The sender ended its side before the last file: it gave up (cancelled), so nothing is kept. */
    let senderEnded = false;
    try {
      // A sender that can resume gets a staging directory named after the folder and its manifest,
      // kept if the transfer is interrupted (resource-folder-resume.ts); others a fresh one.
      if (header.resume === 1) partial = await openFolderPartial(reservation.directory, top, manifestSha256, manifest);
      staging = partial?.staging ?? (await makeStaging(reservation.directory));
      let resume: FolderReceiveResume | undefined;
      let kept = 0;
      if (partial) {
        journal = await FolderJournal.open(partial.staging);
        const scan = partial.inflight?.scan;
        const offer: FolderResumeOffer = {
          held: toRanges(partial.held.keys()),
          ...(partial.inflight && scan ? { partial: { file: partial.inflight.index, have: scan.have, block: scan.block, digests: scan.digests } } : {}),
        };
        stream.write(encodeFrame({ type: 'accept', offset: 0, folder: offer }));
        const answer = await resumeAnswer(reader, idle, policy.idleTimeout, partial.bytes);
        if (answer.type !== 'folder-resume') throw new PeerlinkError('ERR_PROTOCOL', `resource stream: expected folder-resume, got ${answer.type}`);
        const files = manifestFiles(manifest);
        const shas = [...partial.held.entries()].sort((a, b) => a[0] - b[0]).map(([, sha]) => sha);
        if (answer.held !== heldProof(shas)) {
          partial.held.clear(); // nothing of it is kept (below)
          throw new PeerlinkError('ERR_RESOURCE_VERIFY', "the sender's files differ from those the receiver holds of this folder");
        }
        for (const i of partial.held.keys()) kept += files[i]!.size;
        let file: FolderReceiveResume['file'];
        if (partial.inflight) {
          const state = partial.inflight.scan.states.get(answer.offset);
          if (!state) throw new PeerlinkError('ERR_PROTOCOL', `resource stream: the sender resumed a file at ${answer.offset}, which is not an offset the receiver offered`);
          const hash = state.copy();
          if (hash.copy().digest('hex') !== answer.sha256) throw new PeerlinkError('ERR_RESOURCE_VERIFY', `the sender's digest of the first ${answer.offset} bytes of a file does not match the receiver's`);
          file = { index: partial.inflight.index, offset: answer.offset, hash };
          kept += answer.offset;
        } else if (answer.offset !== 0) throw new PeerlinkError('ERR_PROTOCOL', 'resource stream: the sender resumed a file the receiver holds no part of');
        resume = { skip: new Set(partial.held.keys()), ...(file ? { file } : {}), journal };
      } else stream.write(encodeFrame({ type: 'accept', offset: 0 }));
      this.setState('transferring');
      this.startBody(kept);
      if (kept > 0) this.pausedOrResumed({ resumed: kept });
      const changed = await receiveFolderFiles(
        reader,
        staging,
        manifest,
        {
          advance: (n) => this.advance(n),
          file: (e, done) => this.safeEmit('file', { path: e.path, size: e.size, done, files: manifest.files }),
          check: () => {
            if (this.#cancelled) throw this.#cancelled;
          },
          touch: (n) => idle.touch(n),
          waitingOnDisk: (waiting) => (waiting ? idle.pause() : idle.resume()),
        },
        resume,
      );
      idle.stop();
      this.setState('verifying');
      if (journal) {
        await journal.close();
        journal = undefined;
        await fsPromises().rm(join(staging, JOURNAL_NAME), { force: true });
      }
      if (partial) await fsPromises().rm(join(staging, FOLDER_RECORD_NAME), { force: true });
      const name = await placeFolder(reservation.directory, staging, top);
      staging = undefined;
      const path = join(reservation.directory, name);
      // "done" means on disk: one flush for the whole folder before the sender is told.
      await syncFolder(path, manifest);
      saved = header.size;
      stream.write(encodeFrame({ type: 'folder-done', name, files: manifest.files, size: header.size, changed }));
      closeGracefully(stream);
      return { name, path, size: header.size, sha256: manifestSha256, folder: { files: manifest.files, dirs: manifest.dirs, skipped: manifest.skipped, changed } };
    } catch (err) {
      idle.stop();
      const e = this.#cancelled ?? asTransferError(err, false);
      if (stream.readableEnded) senderEnded = true;
      // An interruption keeps a resumable folder's staging directory (and its journal); a cancel,
      // a refusal or bad bytes do not.
      if (partial && staging !== undefined && !senderEnded && KEEP_ON.has(e.code)) {
        keepStaging = true;
        staging = undefined;
      }
      this.#tell('error', e);
      throw e;
    } finally {
      await journal?.close();
      if (staging !== undefined) await removeStaging(staging);
      // Counted (and the count limit applied) before the reservation that covered it ends.
      if (keepStaging) await reservation.keep().catch(() => undefined);
      partial?.release();
      reservation.release(saved);
    }
  }

  /** Returns once the app has accepted the offer; otherwise refuses it (telling the sender) and throws. */
  async #consent(
    store: ResourceStore,
    policy: IncomingPolicy<P>,
    name: string,
    size: number,
    resumable: boolean,
    files?: ResourceOffer<P>['files'],
    folder?: ResourceOffer<P>['folder'],
  ): Promise<void> {
    const refuse = (e: PeerlinkError): never => {
      this.#tell('reject', e);
      try {
        policy.refused?.(Object.freeze({ peer: this.peer, name, size }), e);
      } catch {
        // an app's listener throwing must not break the refusal
      }
      throw e;
    };
    if (policy.accept) {
      // Judged before a person is asked: no point accepting what cannot be saved.
      try {
        await store.check(name, size);
      } catch (err) {
        refuse(asTransferError(err, false));
      }
      this.setState('awaitingAcceptance');
      let yes: boolean;
      try {
        // What a person is asked shows what is already here (a resume sends only the rest).
        const held = resumable ? await store.partialBytes(name, size) : 0;
        yes = await this.#ask(policy.accept, policy.acceptTimeout, name, size, held, files, folder);
      } catch (err) {
        return refuse(asTransferError(err, false));
      }
      if (!yes) refuse(new PeerlinkError('ERR_RESOURCE_REFUSED', 'the receiver declined the offer'));
      if (policy.listening()) this.#announce(policy);
      return;
    }
    if (!policy.listening()) refuse(new PeerlinkError('ERR_RESOURCE_REFUSED', 'the receiver does not accept files (its app takes no resources)'));
    this.#announce(policy);
    if (this.state === 'failed') throw this.error;
  }

  #announce(policy: IncomingPolicy<P>): void {
    try {
      policy.announce(this);
    } catch {
      // an app's listener throwing must not break the transfer
    }
  }

  /** Asks the app; settles false/true, or rejects when the time runs out or the offer goes away. */
  #ask(accept: AcceptResource<P>, timeout: number, name: string, size: number, held: number, files?: ResourceOffer<P>['files'], folder?: ResourceOffer<P>['folder']): Promise<boolean> {
    const stream = this.#stream;
    const withdrawn = new AbortController();
    const offer: ResourceOffer<P> = Object.freeze({
      peer: this.peer,
      files: files ? Object.freeze(files) : Object.freeze([Object.freeze(held > 0 ? { name, size, held } : { name, size })]),
      totalBytes: size,
      ...(folder ? { folder } : {}),
      signal: withdrawn.signal,
    });
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const finish = (err: PeerlinkError | undefined, yes = false): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.off('close', onClose);
        if (err) {
          withdrawn.abort(err);
          reject(err);
        } else resolve(yes);
      };
      const timer = setTimeout(() => finish(new PeerlinkError('ERR_TIMEOUT', `the offer was not accepted within ${Math.round(timeout / 1000)} s`)), timeout);
      timer.unref();
      const onClose = (): void => finish(this.#cancelled ?? new PeerlinkError('ERR_RESOURCE_ABORTED', 'the sender withdrew the offer'));
      stream.once('close', onClose);
      if (stream.destroyed) return onClose();
      Promise.resolve()
        .then(() => accept(offer))
        .then(
          (v) => finish(undefined, v === true),
          (err: unknown) => finish(new PeerlinkError('ERR_RESOURCE_REFUSED', 'the receiver could not decide on the offer', { cause: err })),
        );
    });
  }

  /** Sends a failure to the sender (if the stream still works) and closes. */
  #tell(type: 'reject' | 'error', e: PeerlinkError): void {
    const stream = this.#stream;
    if (!stream.destroyed && !stream.writableEnded) {
      // An internal failure's message may hold local paths: the sender gets only the code.
      const message = e.code === 'ERR_INTERNAL' ? 'the receiver could not save the file' : e.message;
      stream.write(encodeFrame({ type, code: e.code, message }));
      closeGracefully(stream);
    } else stream.destroy();
  }

  /** The digest the sender announced up front, if it did. */
  get announcedSha256(): string | null {
    return this.#sha256;
  }
}
