/**
 * Where an outgoing resource's bytes come from: a local file, or an HTTP(S) GET.
 * Either way the size must be known before the first byte is sent (the receiver
 * checks its quota against it), and the body is a Readable read in chunks of at
 * least 64 KiB for files, pulled only as fast as the network takes it.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Readable, Transform } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { basename } from 'node:path';
import { PeerlinkError } from '../errors.js';
import { fsPromises } from '../lazy-builtins.js';

export interface ResourceSource {
  /** Exact number of bytes the body will yield. */
  size: number;
  /** The body. Must be destroyed by the caller if not read to the end. */
  body: Readable;
  /** A name to offer when the caller gives none (the file's base name, the URL's last segment). */
  suggestedName: string;
  /** For messages: the path or URL. */
  description: string;
}

export interface OpenSourceOptions {
  signal?: AbortSignal;
  /** Most redirects followed for URLs (default 5). */
  maxRedirects?: number;
  /** Extra trusted CA certificates (PEM) for https: sources, e.g. a LAN server's self-signed certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * The body starts at this byte (a resumed transfer); `size` is still the whole resource's.
   * Files are read from there; HTTP asks for `Range: bytes=start-` and, if the server answers
   * 200 instead of 206, skips `start` bytes of the full body.
   */
  start?: number;
}

/**
 * File reads are this large (except the last). 1 MiB: a quarter of the reads of 256 KiB and
 * less CPU per byte (measured on a 1 GiB file in the page cache: 136 ms for 1 MiB reads into
 * fresh buffers, 540 ms for 256 KiB, 1320 ms through createReadStream at 256 KiB; 4 MiB
 * buffers cost more again, as each is a fresh mapping the kernel must fault in).
 */
export const FILE_CHUNK = 1024 * 1024;
/** Reads kept ahead of the sender, so the next chunk is there when the network takes one. */
const READ_AHEAD = 2;

function sourceError(message: string, cause?: unknown): PeerlinkError {
  return new PeerlinkError('ERR_RESOURCE_SOURCE', message, cause === undefined ? undefined : { cause });
}

/** True for http: and https: URLs given as URL objects or strings. */
export function isHttpSource(source: string | URL): boolean {
  const s = typeof source === 'string' ? source : source.href;
  return /^https?:\/\//i.test(s);
}

export async function openResourceSource(source: string | URL, options: OpenSourceOptions = {}): Promise<ResourceSource> {
  if (isHttpSource(source)) return openHttp(new URL(source), options, options.maxRedirects ?? 5);
  let path: string;
  if (source instanceof URL) {
    if (source.protocol !== 'file:') throw sourceError(`cannot send from a ${source.protocol} URL: use a file path, file:, http: or https:`);
    path = fileURLToPath(source);
  } else {
    path = /^file:/i.test(source) ? fileURLToPath(source) : source;
  }
  return openFile(path, options);
}

async function openFile(path: string, options: OpenSourceOptions): Promise<ResourceSource> {
  let st;
  try {
    st = await fsPromises().stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw sourceError(code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? String(err)})`, err);
  }
  if (!st.isFile()) throw sourceError(`${path}: not a regular file`);
  const size = st.size;
  // `end` pins the length to the size announced: a file that grows meanwhile is cut
  // there; one that shrinks ends early and the sender reports it.
  if (size === 0) {
    // createReadStream cannot express "no bytes" (end must be >= start); still check it is readable.
    await fsPromises().access(path, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
      throw sourceError(`${path}: cannot read (${err.code ?? err.message})`, err);
    });
    return { size, body: Readable.from([]), suggestedName: basename(path), description: path };
  }
  const start = options.start ?? 0;
  if (start >= size) return { size, body: Readable.from([]), suggestedName: basename(path), description: path };
  let handle: FileHandle;
  try {
    handle = await fsPromises().open(path, 'r');
  } catch (err) {
    throw sourceError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
  }
  const body = new FileBody(handle, start, size, options.signal);
  return { size, body, suggestedName: basename(path), description: path };
}

async function openHttp(url: URL, options: OpenSourceOptions, redirectsLeft: number): Promise<ResourceSource> {
  // node:http(s) only for URL sources: a few MiB of RSS every session would pay otherwise
  const request = url.protocol === 'https:' ? (await import('node:https')).request : (await import('node:http')).request;
  const start = options.start ?? 0;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'GET',
      // The bytes sent are the bytes the server sends: ask for them unencoded so the
      // size and digest describe the resource, not a compressed form of it.
      headers: { 'accept-encoding': 'identity', 'user-agent': 'peerlink', ...(start > 0 ? { range: `bytes=${start}-` } : {}) },
      signal: options.signal,
      ...(options.ca !== undefined && url.protocol === 'https:' ? { ca: options.ca } : {}),
    });
    req.once('error', (err) => reject(sourceError(`${url.href}: request failed (${(err as NodeJS.ErrnoException).code ?? err.message})`, err)));
    req.once('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
        res.resume();
        if (redirectsLeft <= 0) return reject(sourceError(`${url.href}: too many redirects`));
        let next: URL;
        try {
          next = new URL(res.headers.location, url);
        } catch {
          return reject(sourceError(`${url.href}: bad redirect location`));
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') return reject(sourceError(`${url.href}: redirect to a ${next.protocol} URL refused`));
        openHttp(next, options, redirectsLeft - 1).then(resolve, reject);
        return;
      }
      const segment = url.pathname.split('/').filter(Boolean).pop() ?? '';
      let last = segment;
      try {
        last = decodeURIComponent(segment);
      } catch {
        // keep the encoded form
      }
      if (status === 206 && start > 0) {
        // RFC 9110 §14.4: Content-Range "bytes first-last/complete"; only the exact rest is usable.
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''));
        const first = Number(m?.[1]);
        const lastByte = Number(m?.[2]);
        const complete = Number(m?.[3]);
        if (!m || first !== start || !Number.isSafeInteger(complete) || lastByte !== complete - 1) {
          res.destroy();
          return reject(sourceError(`${url.href}: the server answered the range request with an unusable Content-Range`));
        }
        return resolve({ size: complete, body: res, suggestedName: last || url.hostname, description: url.href });
      }
      if (status !== 200) {
        res.resume();
        return reject(sourceError(`${url.href}: the server answered ${status} ${res.statusMessage ?? ''}`.trimEnd()));
      }
      const encoding = res.headers['content-encoding'];
      if (encoding !== undefined && encoding !== 'identity') {
        res.destroy();
        return reject(sourceError(`${url.href}: the server sent a ${encoding}-encoded body; peerlink sends resources byte for byte and needs the plain one`));
      }
      const length = res.headers['content-length'];
      const size = length !== undefined && /^\d+$/.test(length) ? Number(length) : NaN;
      if (!Number.isSafeInteger(size)) {
        res.destroy();
        return reject(sourceError(`${url.href}: the server did not say how large the file is (no Content-Length); download it first and send the file`));
      }
      // No range support: the whole body comes again, and the part before `start` is skipped.
      resolve({ size, body: start > 0 ? skipBytes(res, start) : res, suggestedName: last || url.hostname, description: url.href });
    });
    req.end();
  });
}

/** `body` without its first `n` bytes (a server that ignored a Range request). */
function skipBytes(body: Readable, n: number): Readable {
  let left = n;
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return cb();
      }
      const rest = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      cb(null, rest);
    },
  });
  body.on('error', (err) => out.destroy(err));
  out.on('close', () => body.destroy());
  return body.pipe(out);
}

/**
 * A file's bytes [start, end) in FILE_CHUNK reads, each into a buffer of its own (a chunk is
 * handed on to the network and to the hash, so it is never reused), READ_AHEAD reads ahead.
 * The length is pinned at open: a file that grows meanwhile is cut there, one that shrinks
 * ends early (the sender reports it).
 */
class FileBody extends Readable {
  readonly #handle: FileHandle;
  #pos: number;
  readonly #end: number;
  #reading = false;

  constructor(handle: FileHandle, start: number, end: number, signal: AbortSignal | undefined) {
    // Object mode: read() hands out each chunk as read. In byte mode it joins everything buffered
    // into a new Buffer (a copy of the whole file, ~10 % of the sender's main thread).
    super({ objectMode: true, highWaterMark: READ_AHEAD, ...(signal ? { signal } : {}) });
    this.#handle = handle;
    this.#pos = start;
    this.#end = end;
  }

  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        const want = Math.min(FILE_CHUNK, this.#end - this.#pos);
        if (want <= 0) {
          this.push(null);
          return;
        }
        const buf = Buffer.allocUnsafeSlow(want);
        const { bytesRead } = await this.#handle.read(buf, 0, want, this.#pos);
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.push(null);
          return;
        }
        this.#pos += bytesRead;
        if (!this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead))) break;
      }
    } catch (err) {
      this.destroy(err as Error);
      return;
    } finally {
      this.#reading = false;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#handle.close().then(
      () => cb(err),
      () => cb(err),
    );
  }
}
