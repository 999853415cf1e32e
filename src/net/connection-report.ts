/**
 * What report() says about the transport beyond the counters: the TLS facts taken at ready
 * and the RTT estimate fed by the channel's samples.
 */
import type { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { spkiPin } from './identity.js';
import type { Parameters } from './parameters.js';
import { DEFAULT_PSK_IDENTITY } from './psk.js';
import type { RttEstimate, TlsReport } from './report.js';

/** TLS facts for report(), taken at ready (a closed TLSSocket no longer knows them). */
export function describeTls(t: TLSSocket, parameters: Parameters, chain: readonly X509Certificate[], role: 'client' | 'server'): TlsReport | undefined {
  const tls = parameters.tls;
  if (!tls) return undefined;
  const cipher = t.getCipher();
  const leaf = chain[0];
  return {
    version: t.getProtocol() ?? '?',
    cipher: cipher?.standardName ?? cipher?.name ?? '?',
    mode: tls.psk ? 'psk' : 'pki',
    resumed: t.isSessionReused(),
    ...(tls.psk && role === 'client' ? { pskIdentity: tls.psk.identity ?? DEFAULT_PSK_IDENTITY } : {}),
    ...(leaf ? { peerPin: spkiPin(leaf), peerSubject: leaf.subject.replace(/\n/g, ', ') } : {}),
  };
}

/** Adds an RTT sample (smoothed RFC 6298 style); the first sample starts the estimate. */
export function sampleRtt(r: RttEstimate | undefined, ms: number): RttEstimate {
  if (!r) return { latest: ms, smoothed: ms, min: ms, samples: 1 };
  r.latest = ms;
  r.smoothed = r.smoothed * 0.875 + ms * 0.125;
  r.min = Math.min(r.min, ms);
  r.samples++;
  return r;
}
