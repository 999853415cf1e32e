/**
 * Node built-ins that only some paths use, loaded on first use (docs/memory.md "This round's
 * changes (lazy built-ins)"). A static `import` loads a built-in, and what it requires, when the
 * library is imported: node:fs/promises (with readline and the fs watchers), node:worker_threads,
 * node:child_process and node:dns/promises (with node:perf_hooks, now the global `performance`)
 * made the import 1.2–1.5 MiB larger on Node 22–26, and a lone session that transfers no file,
 * resolves no host name and syncs no folder uses none of them. `process.getBuiltinModule` is
 * synchronous, so the callers' APIs stay as they were (the pattern of net/tls-module.ts).
 * test/integration/session/lazy-modules.test.ts keeps them lazy.
 */
import type * as FsPromises from 'node:fs/promises';
import type * as WorkerThreads from 'node:worker_threads';
import type * as ChildProcess from 'node:child_process';
import type * as DnsPromises from 'node:dns/promises';

let fsp: typeof FsPromises | undefined;
let workers: typeof WorkerThreads | undefined;
let child: typeof ChildProcess | undefined;
let dnsp: typeof DnsPromises | undefined;

export function fsPromises(): typeof FsPromises {
  fsp ??= process.getBuiltinModule('node:fs/promises');
  return fsp;
}

export function workerThreads(): typeof WorkerThreads {
  workers ??= process.getBuiltinModule('node:worker_threads');
  return workers;
}

export function childProcess(): typeof ChildProcess {
  child ??= process.getBuiltinModule('node:child_process');
  return child;
}

export function dnsPromises(): typeof DnsPromises {
  dnsp ??= process.getBuiltinModule('node:dns/promises');
  return dnsp;
}
