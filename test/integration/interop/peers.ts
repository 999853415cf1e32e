/**
 * Helpers for the interop tests: our side runs as `node bin/peerlink.js advertise|browse
 * --json` inside lab hosts (the CLI contract of issue 2), or as the advertise-update
 * fixture when a test needs to change the TXT record.
 */
import type { Host, Lab } from '../../harness/netns.js';
import { PEERLINK_BIN, fixtureScript } from '../../harness/paths.js';
import { waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { parseAvahiBrowseLine, type AvahiBrowseLine } from '../../harness/avahi.js';

/** Process start-up on a busy 2-core machine: generous, and separate from behaviour deadlines. */
export const STARTUP_MS = 45_000;
/** Discovery of a service that is already announced, once the browser runs. */
export const DISCOVERY_MS = 30_000;

/** `peerlink browse --json` line. */
export interface BrowseLine {
  event: 'added' | 'changed' | 'removed';
  name: string;
  type: string;
  domain: string;
  host?: string;
  port?: number;
  addresses?: string[];
  txt?: Record<string, string | null>;
  binaryTxt?: string[];
  interface: string;
}

/** `peerlink advertise --json` line. */
export interface AdvertiseLine {
  event: 'registered' | 'renamed' | 'updated' | 'stopped';
  name: string;
  from?: string;
  type?: string;
  port?: number;
}

export interface OursOptions {
  /** Host name to publish (`ours-h1`): every namespace shares the machine's host name. */
  host?: string;
  interfaces?: string[];
}

function common(opts: OursOptions): string[] {
  const a: string[] = [];
  if (opts.host) a.push('--host', opts.host);
  for (const i of opts.interfaces ?? []) a.push('--interface', i);
  return a;
}

/** `peerlink advertise <name> <type> <port> [txt...] --json` in a lab host. */
export function oursAdvertise(lab: Lab, h: number | Host | string, name: string, type: string, port: number, txt: string[] = [], opts: OursOptions = {}): TrackedProcess {
  return lab.spawnNode(h, PEERLINK_BIN, ['advertise', name, type, String(port), ...txt, '--json', ...common(opts)]);
}

/** The advertise-update fixture (library API; stdin `update k=v ...`). */
export function oursAdvertiseUpdatable(lab: Lab, h: number | Host | string, name: string, type: string, port: number, txt: string[] = [], opts: OursOptions = {}): TrackedProcess {
  return lab.spawn(h, process.execPath, [fixtureScript('advertise-update.js'), name, type, String(port), ...txt, ...common(opts)], { stdin: true });
}

/** `peerlink browse <type> --json` in a lab host. */
export function oursBrowse(lab: Lab, h: number | Host | string, type: string, opts: { interfaces?: string[] } = {}): TrackedProcess {
  return lab.spawnNode(h, PEERLINK_BIN, ['browse', type, '--json', ...common(opts)]);
}

/** Waits for the last `registered` line (after any renames); returns the final name. */
export async function registered(proc: TrackedProcess, timeoutMs = STARTUP_MS): Promise<string> {
  const ev = await waitForJson<AdvertiseLine>(proc, (e) => e.event === 'registered', timeoutMs, { what: '"registered"' });
  return ev.name;
}

export function waitAdded(proc: TrackedProcess, name: string, timeoutMs = DISCOVERY_MS, extra: (e: BrowseLine) => boolean = () => true): Promise<BrowseLine> {
  return waitForJson<BrowseLine>(proc, (e) => e.event === 'added' && e.name === name && extra(e), timeoutMs, { what: `"added" ${name}` });
}

/** Avahi's `=` (resolved) line for an instance, parsed. */
export function avahiResolved(l: string, name: string, extra: (e: AvahiBrowseLine) => boolean = () => true): boolean {
  const e = parseAvahiBrowseLine(l);
  return e !== undefined && e.kind === '=' && e.name === name && extra(e);
}

export function avahiRemoved(l: string, name: string): boolean {
  const e = parseAvahiBrowseLine(l);
  return e !== undefined && e.kind === '-' && e.name === name;
}

/** TXT strings as an order-free, comparable list (Avahi prints them in reverse). */
export function txtSet(strings: readonly string[] | undefined): string[] {
  return [...(strings ?? [])].sort();
}

/** The conflict-renamed forms of a name: ours/Apple `Name (2)`, Avahi `Name #2`, zeroconf `Name-2`. */
export function isRenamedFrom(name: string, original: string): boolean {
  const esc = original.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc}( \\(\\d+\\)| #\\d+|-\\d+)$`).test(name);
}

/**
 * Awaits `p`; if it fails, the error also quotes the sniffer's packets that mention
 * `filter` (a name or type), so a failure report carries its own capture.
 */
export async function withCapture<T>(sniffer: TrackedProcess | undefined, filter: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (!sniffer) throw err;
    const lines = sniffer.stdoutLines.filter((l) => l.includes(filter)).slice(-80);
    throw new Error(`${(err as Error).message}\n--- mDNS on the bridge (${filter}) ---\n${lines.join('\n')}`, { cause: err });
  }
}
