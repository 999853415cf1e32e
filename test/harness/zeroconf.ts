/**
 * python-zeroconf peers for interop tests: the scripts under test/interop/ run inside a
 * lab namespace with Debian's /usr/bin/python3 (never the first python3 on PATH, which
 * may lack the module) and print JSON lines.
 */
import type { Lab, Host } from './netns.js';
import { interopScript, SYSTEM_PYTHON } from './paths.js';
import { waitForJson, type TrackedProcess } from './proc.js';

export type IpVersion = 'all' | 'v4' | 'v6';

export interface ZeroconfBrowseEvent {
  event: 'ready' | 'added' | 'updated' | 'removed' | 'unresolved' | 'stopped';
  name?: string;
  fullname?: string;
  type?: string;
  server?: string;
  port?: number;
  addresses?: string[];
  txt?: Record<string, string | null>;
}

export interface ZeroconfPublishEvent {
  event: 'registered' | 'renamed' | 'updated' | 'stopped';
  name?: string;
  from?: string;
  requested?: string;
  txt?: Record<string, string | null>;
}

const env = (): NodeJS.ProcessEnv => ({ ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' });

/** Starts zc_browse.py for `type` (e.g. `_example._tcp`); wait for `{event:'ready'}` before relying on it. */
export function zeroconfBrowse(lab: Lab, where: number | Host | string, type: string, opts: { ipVersion?: IpVersion; interfaces?: string[] } = {}): TrackedProcess {
  const args = [interopScript('zc_browse.py'), type, '--ip-version', opts.ipVersion ?? 'all'];
  for (const i of opts.interfaces ?? []) args.push('--interface', i);
  const ns = typeof where === 'string' ? where : lab.host(where).ns;
  return lab.spawn(ns, SYSTEM_PYTHON, args, { env: env(), label: `${ns}: zc_browse ${type}` });
}

export interface ZeroconfPublishOptions {
  /** Host name (default `zc-<pid>.local.`). */
  server?: string;
  /** Addresses to publish (default: every non-loopback address of the namespace). */
  addresses?: string[];
  ipVersion?: IpVersion;
  includeLoopback?: boolean;
  /** zeroconf's `interfaces` (addresses of the interfaces to bind, e.g. `127.0.0.1`). */
  interfaces?: string[];
}

/**
 * Starts zc_publish.py; wait with `zeroconfRegistered(proc)`. Write `update k=v ...` to
 * its stdin (proc.writeLine) to change the TXT record; SIGTERM sends goodbyes.
 */
export function zeroconfPublish(
  lab: Lab,
  where: number | Host | string,
  name: string,
  type: string,
  port: number,
  txt: string[] = [],
  opts: ZeroconfPublishOptions = {},
): TrackedProcess {
  const args = [interopScript('zc_publish.py'), name, type, String(port), ...txt, '--ip-version', opts.ipVersion ?? 'all'];
  if (opts.server) args.push('--server', opts.server);
  for (const a of opts.addresses ?? []) args.push('--address', a);
  if (opts.includeLoopback) args.push('--include-loopback');
  for (const i of opts.interfaces ?? []) args.push('--interface', i);
  const ns = typeof where === 'string' ? where : lab.host(where).ns;
  return lab.spawn(ns, SYSTEM_PYTHON, args, { env: env(), stdin: true, label: `${ns}: zc_publish ${name} ${type}` });
}

/** Waits for the publisher's `registered` line; returns the final name. */
export async function zeroconfRegistered(proc: TrackedProcess, timeoutMs = 30_000): Promise<string> {
  const ev = await waitForJson<ZeroconfPublishEvent>(proc, (e) => e.event === 'registered', timeoutMs, { what: 'zeroconf "registered"' });
  return ev.name ?? '';
}

/** Waits for the browser's `ready` line (its sockets are open). */
export async function zeroconfReady(proc: TrackedProcess, timeoutMs = 30_000): Promise<void> {
  await waitForJson<ZeroconfBrowseEvent>(proc, (e) => e.event === 'ready', timeoutMs, { what: 'zeroconf browser "ready"' });
}
