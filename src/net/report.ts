/**
 * Counters and the connection report (Network framework's connection log summary).
 */
import type { ConnectionState } from './state.js';
import type { ConnectionPath } from './path.js';

export interface ConnectionCounters {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** Datagrams / messages dropped because a queue was full (UDP only). */
  dropped: number;
  keepalivesSent: number;
  /** Connection attempts (1 + retries + Happy Eyeballs racers). */
  attempts: number;
}

export interface RttEstimate {
  /** Latest sample, ms. */
  latest: number;
  /** Smoothed (RFC 6298 style), ms. */
  smoothed: number;
  min: number;
  samples: number;
}

export interface TlsReport {
  version: string;
  cipher: string;
  /** 'psk' or 'pki'. */
  mode: 'psk' | 'pki';
  pskIdentity?: string;
  /** sha256/BASE64 pin of the peer's public key (PKI). */
  peerPin?: string;
  peerSubject?: string;
  resumed: boolean;
}

export interface ConnectionReport {
  id: number;
  /** The endpoint dialled, or the remote address for accepted connections. */
  endpoint: string;
  role: 'client' | 'server';
  stack: string;
  state: ConnectionState;
  error?: { code: string; message: string };
  path?: ConnectionPath;
  /** Milliseconds: resolution, TCP connect, TLS / WebSocket handshake, time to ready, lifetime. */
  timings: { resolve?: number; connect?: number; handshake?: number; ready?: number; duration: number };
  tls?: TlsReport;
  rtt?: RttEstimate;
  counters: ConnectionCounters;
}

export function emptyCounters(): ConnectionCounters {
  return { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, dropped: 0, keepalivesSent: 0, attempts: 0 };
}

function ms(n: number | undefined): string {
  return n === undefined ? '-' : `${n.toFixed(n < 10 ? 2 : 0)}ms`;
}

/** One human paragraph, like Network framework's "[C1] ... " summary lines. */
export function formatReport(r: ConnectionReport): string {
  const lines: string[] = [];
  lines.push(`[C${r.id}] ${r.role} ${r.endpoint} ${r.stack} ${r.state}${r.error ? ` (${r.error.code}: ${r.error.message})` : ''}`);
  if (r.path) {
    const p = r.path;
    const fmt = (e: { host: string; port: number }): string => (e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`);
    lines.push(`  path: ${fmt(p.localEndpoint)} -> ${fmt(p.remoteEndpoint)}${p.interface ? ` on ${p.interface.name} (${p.interface.type}, mtu ${p.interface.mtu}, ${p.interfaceSource})` : ''}`);
  }
  if (r.tls) {
    lines.push(`  tls: ${r.tls.version} ${r.tls.cipher} ${r.tls.mode}${r.tls.pskIdentity !== undefined ? ` identity "${r.tls.pskIdentity}"` : ''}${r.tls.peerPin ? ` peer ${r.tls.peerPin}` : ''}`);
  }
  const t = r.timings;
  lines.push(`  timings: resolve ${ms(t.resolve)}, connect ${ms(t.connect)}, handshake ${ms(t.handshake)}, ready ${ms(t.ready)}, duration ${ms(t.duration)}`);
  if (r.rtt) lines.push(`  rtt: latest ${ms(r.rtt.latest)}, smoothed ${ms(r.rtt.smoothed)}, min ${ms(r.rtt.min)} (${r.rtt.samples} samples)`);
  const c = r.counters;
  lines.push(`  counters: in ${c.bytesIn} B / ${c.messagesIn} msg, out ${c.bytesOut} B / ${c.messagesOut} msg, dropped ${c.dropped}, keepalives ${c.keepalivesSent}, attempts ${c.attempts}`);
  return lines.join('\n');
}
