/**
 * Resolution and connection racing (RFC 8305 Happy Eyeballs v2): addresses are interleaved by
 * family starting with IPv6, attempts start 250 ms apart (or at once when the previous one
 * fails), the first to connect wins and the rest are destroyed. We race our own sockets rather
 * than using Node's autoSelectFamily so that every attempt can be pinned to an interface
 * (SO_BINDTODEVICE before connect) and so attempts are counted and reported.
 */
import { isIP, Socket } from 'node:net';
import { PeerlinkError } from '../errors.js';
import { toPeerlinkError } from './net-errors.js';
import { createPinnedTcpSocket } from './sockopt.js';
import { dnsPromises } from '../lazy-builtins.js';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
  /** Interface name for IPv6 link-local addresses (zone). */
  zone?: string;
}

/** Connection attempt delay (RFC 8305 §5 recommends 250 ms). */
export const ATTEMPT_DELAY = 250;

export function isLinkLocal6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/** An IP literal's address (nothing to resolve); undefined for a host name. */
export function literalAddress(host: string, zone?: string): ResolvedAddress | undefined {
  const fam = isIP(host);
  return fam !== 0 ? withZone({ address: host, family: fam as 4 | 6 }, zone) : undefined;
}

/** Host name or literal → addresses, IPv6 first. */
export async function resolveHost(host: string, zone?: string): Promise<ResolvedAddress[]> {
  const literal = literalAddress(host, zone);
  if (literal) return [literal];
  try {
    const all = await dnsPromises().lookup(host, { all: true, verbatim: true });
    return all.map((a) => withZone({ address: a.address, family: a.family as 4 | 6 }, zone));
  } catch (err) {
    throw toPeerlinkError(err, { what: `resolving ${host}` });
  }
}

function withZone(a: ResolvedAddress, zone: string | undefined): ResolvedAddress {
  return a.family === 6 && zone !== undefined && isLinkLocal6(a.address) ? { ...a, zone } : a;
}

/** RFC 8305 §4: interleave families, IPv6 first, keeping each family's order. */
export function sortForRace(addrs: readonly ResolvedAddress[]): ResolvedAddress[] {
  const seen = new Set<string>();
  const uniq = addrs.filter((a) => {
    const k = `${a.address}%${a.zone ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const v6 = uniq.filter((a) => a.family === 6);
  const v4 = uniq.filter((a) => a.family === 4);
  const out: ResolvedAddress[] = [];
  for (let i = 0; i < Math.max(v6.length, v4.length); i++) {
    if (v6[i]) out.push(v6[i] as ResolvedAddress);
    if (v4[i]) out.push(v4[i] as ResolvedAddress);
  }
  return out;
}

export interface RaceOptions {
  port: number;
  /** Interface to pin each attempt to (SO_BINDTODEVICE), per address. */
  pinFor?: (a: ResolvedAddress) => string | undefined;
  localAddress?: string;
  localPort?: number;
  signal?: AbortSignal;
  attemptDelay?: number;
  /** Called when an attempt starts (for counters). */
  onAttempt?: (a: ResolvedAddress) => void;
}

export interface RaceResult {
  socket: Socket;
  address: ResolvedAddress;
  /** True when the socket was pinned to an interface before connecting. */
  pinned: boolean;
}

function connectHost(a: ResolvedAddress): string {
  return a.zone !== undefined ? `${a.address}%${a.zone}` : a.address;
}

/** Races TCP connects to the addresses; resolves with the first connected socket. */
export function raceConnect(addresses: readonly ResolvedAddress[], opts: RaceOptions): Promise<RaceResult> {
  const list = sortForRace(addresses);
  if (list.length === 0) return Promise.reject(new PeerlinkError('ERR_RESOLVE_FAILED', 'no addresses to connect to'));
  const delay = opts.attemptDelay ?? ATTEMPT_DELAY;
  return new Promise<RaceResult>((resolve, reject) => {
    const live = new Set<Socket>();
    let next = 0;
    let done = false;
    let lastError: PeerlinkError | undefined;
    let timer: NodeJS.Timeout | undefined;

    const finish = (err: PeerlinkError | undefined, win?: RaceResult): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      for (const s of live) if (s !== win?.socket) s.destroy();
      live.clear();
      if (win) resolve(win);
      else reject(err ?? new PeerlinkError('ERR_CONNECTION_REFUSED', 'could not connect'));
    };
    const onAbort = (): void => {
      const r: unknown = opts.signal?.reason;
      finish(r instanceof PeerlinkError ? r : new PeerlinkError('ERR_CANCELLED', 'connection attempt cancelled'));
    };
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const startNext = (): void => {
      if (done) return;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const a = list[next++];
      if (!a) {
        if (live.size === 0) finish(lastError);
        return;
      }
      opts.onAttempt?.(a);
      const ifname = opts.pinFor?.(a);
      let sock: Socket | undefined;
      if (ifname !== undefined) sock = createPinnedTcpSocket(a.family, ifname);
      const pinned = sock !== undefined;
      sock ??= new Socket({ allowHalfOpen: true });
      live.add(sock);
      const s = sock;
      s.once('connect', () => {
        s.removeAllListeners('error');
        // Later errors belong to the channel (or the TLS socket on top); until it takes over,
        // an unhandled 'error' event must not take the process down.
        s.on('error', () => undefined);
        live.delete(s);
        finish(undefined, { socket: s, address: a, pinned });
      });
      s.once('error', (err) => {
        live.delete(s);
        s.destroy();
        lastError = toPeerlinkError(err, { during: 'connect', what: `connecting to ${connectHost(a)} port ${opts.port}` });
        // A failed attempt lets the next one start at once (RFC 8305 §5).
        startNext();
      });
      const connectOpts: { port: number; host: string; localAddress?: string; localPort?: number; family: number } = { port: opts.port, host: connectHost(a), family: a.family };
      if (opts.localAddress !== undefined) connectOpts.localAddress = opts.localAddress;
      if (opts.localPort !== undefined && opts.localPort !== 0) connectOpts.localPort = opts.localPort;
      s.connect(connectOpts);
      if (next < list.length) timer = setTimeout(startNext, delay);
    };
    startNext();
  });
}
