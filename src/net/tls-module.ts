/**
 * node:tls, loaded on first use. Loading it (with the OpenSSL set-up its first secure context
 * does) costs a process 5–6.5 MiB of RSS on Node 24/26 and ~3.5 MiB on Node 22 (docs/memory.md
 * "Breakdown"), which a session that has not met a peer yet does not need. Synchronous, so the
 * callers' APIs stay as they were.
 */
import type * as Tls from 'node:tls';

let tls: typeof Tls | undefined;

export function tlsModule(): typeof Tls {
  tls ??= process.getBuiltinModule('node:tls');
  return tls;
}
