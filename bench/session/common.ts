/**
 * What the session benchmark's processes share (bench.ts forks its receivers with the same
 * file): the PSK and message sizes, the messages between parent and child, the command line,
 * and the raw TLS and process plumbing both sides use.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import tls, { type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { PeerSession } from '../../src/session/index.js';
import { PSK_TLS12_CIPHERS, PSK_TLS13_SUITES } from '../../src/net/psk.js';

export const PSK_CIPHERS = `${PSK_TLS13_SUITES}:${PSK_TLS12_CIPHERS}`;
export const KEY_HEX = process.env.BENCH_PSK ?? randomBytes(32).toString('hex');
export const MSG_SIZE = 100;
export const CHUNK = 64 * 1024;

export type ChildMsg =
  | { type: 'ready'; sessionPort: number; rawPort: number }
  | { type: 'done'; what: string; count: number; bytes: number; maxRssKiB?: number }
  | { type: 'cpu'; micros: number };
export type ParentMsg = { type: 'expect'; what: 'messages' | 'raw-messages'; count: number } | { type: 'echo'; on: boolean } | { type: 'cpu' } | { type: 'quit' };

export function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

export function argList(name: string, dflt: string): string[] {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? (process.argv[i + 1] ?? '') : dflt;
  return v.split(',').filter((x) => x.length > 0);
}

export function sessionOptions(displayName: string, extra: { resources?: { directory: string } } = {}): ConstructorParameters<typeof PeerSession>[0] {
  return { serviceType: 'bench', displayName, security: { mode: 'psk', key: KEY_HEX }, advertise: false, browse: false, maxMessageSize: 1 << 20, ...extra };
}

export function tlsServerOptions(): tls.TlsOptions {
  const keyBuf = Buffer.from(KEY_HEX, 'hex');
  return { ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', pskCallback: () => keyBuf };
}

export function waitFor(c: ChildProcess, what: string): Promise<Extract<ChildMsg, { type: 'done' }>> {
  return new Promise((resolve, reject) => {
    const on = (m: ChildMsg): void => {
      if (m.type === 'done' && m.what.startsWith(what)) {
        c.off('message', on);
        if (m.what !== what) reject(new Error(m.what));
        else resolve(m);
      }
    };
    c.on('message', on);
  });
}

export function rawConnect(port: number): Promise<TLSSocket> {
  const key = Buffer.from(KEY_HEX, 'hex');
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', checkServerIdentity: () => undefined, pskCallback: () => ({ psk: key, identity: 'peerlink' }) }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
  });
}

export function write(s: TLSSocket | Duplex, b: Buffer): Promise<void> | undefined {
  if (s.write(b)) return undefined;
  return new Promise((r) => s.once('drain', () => r()));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function forkChild(args: string[]): { c: ChildProcess; ready: Promise<Extract<ChildMsg, { type: 'ready' }>> } {
  const c = fork(fileURLToPath(new URL('./bench.js', import.meta.url)), args, { env: { ...process.env, BENCH_PSK: KEY_HEX } });
  const ready = new Promise<Extract<ChildMsg, { type: 'ready' }>>((resolve, reject) => {
    c.once('exit', (code) => reject(new Error(`bench child ${args.join(' ')} exited (${String(code)}) before it was ready`)));
    c.once('message', (m: ChildMsg) => m.type === 'ready' && resolve(m));
  });
  return { c, ready };
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

export const median = (xs: number[]): number => percentile(xs, 50);
