/**
 * What a DNS server (or whoever answers in its name) can make wide-area DNS-SD spend: answer
 * sizes, time per query, instances followed and resolved, how often a domain is polled, names
 * tried when registering, browse domains taken from b/lb PTRs. Option `WideAreaOptions.limits`
 * (PeerSessionOptions.wideArea.limits, net's Browser / Listener `wideArea.limits`); defaults in
 * DEFAULT_UNICAST_LIMITS, documented in docs/wide-area.md "Limits" and docs/security.md.
 */
import { fillLimits } from '../fill-limits.js';

export interface UnicastLimits {
  /** Wait for an answer, per attempt, ms. Default 3000. */
  queryTimeout: number;
  /** UDP attempts per query before giving up (then the next server). Default 3. */
  queryAttempts: number;
  /** Largest UDP answer parsed, bytes (larger ones are ignored like garbage). Default 9000. */
  maxUdpAnswer: number;
  /** Largest TCP answer read, bytes (at most 65535, the length prefix's range). Default 65535. */
  maxTcpAnswer: number;
  /** Instances followed per browsed domain (PTRs past this are ignored). Default 256. */
  maxInstances: number;
  /** Instances one browser resolves at a time. Default 8. */
  resolveConcurrency: number;
  /** Shortest time between two browse rounds, seconds, whatever TTL the server gives (0 included). Default 1. */
  minBrowseInterval: number;
  /** Names tried when registering (`Name (2)`, `Name (3)`… each time the server says the name is taken). Default 32. */
  maxRenames: number;
  /** Browse domains taken from `b` / `lb` PTRs (RFC 6763 §11, `discoverDomains`). Default 64. */
  maxBrowseDomains: number;
}

export const DEFAULT_UNICAST_LIMITS: Readonly<UnicastLimits> = Object.freeze({
  queryTimeout: 3000,
  queryAttempts: 3,
  maxUdpAnswer: 9000,
  maxTcpAnswer: 65535,
  maxInstances: 256,
  resolveConcurrency: 8,
  minBrowseInterval: 1,
  maxRenames: 32,
  maxBrowseDomains: 64,
});

const COUNTS = new Set<keyof UnicastLimits>(['queryAttempts', 'maxUdpAnswer', 'maxTcpAnswer', 'maxInstances', 'resolveConcurrency', 'maxRenames', 'maxBrowseDomains']);

/** Fills in and checks the limits an app gave (ERR_INVALID_ARGUMENT for a non-positive one; counts must be integers). */
export function resolveUnicastLimits(given: Partial<UnicastLimits> | undefined): UnicastLimits {
  const out = fillLimits(DEFAULT_UNICAST_LIMITS, given, 'wide-area limit', COUNTS);
  out.maxTcpAnswer = Math.min(out.maxTcpAnswer, 65535);
  return out;
}
