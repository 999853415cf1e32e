/**
 * The kernel's view of a TCP connection (Linux `struct tcp_info`, getsockopt TCP_INFO): what
 * the session's link-quality estimate reads from live traffic. The offsets are those of
 * /usr/include/linux/tcp.h (checked against offsetof() on this kernel, 6.18: 232 bytes);
 * the kernel copies min(asked, its own size), so a field past the returned length is absent
 * (undefined) rather than read as zero — e.g. delivery rate needs Linux 4.9, bytes_retrans 4.19.
 */
import type { Socket } from 'node:net';
import { readTcpInfoBuffer } from './sockopt.js';

/** tcpi_state of a connection the peer reset (include/net/tcp_states.h TCP_CLOSE). */
const TCP_CLOSE = 7;

/** The peer has reset this connection already, as the kernel sees it now (false where TCP_INFO cannot be read). */
export function resetByPeer(socket: Socket): boolean {
  const b = readTcpInfoBuffer(socket);
  return b !== undefined && b.length > 0 && b.readUInt8(0) === TCP_CLOSE;
}

export interface TcpInfo {
  /** TCP state (1 = ESTABLISHED). */
  state: number;
  /** Congestion-avoidance state: 0 open, 1 disorder, 2 CWR, 3 recovery, 4 loss (RTO). */
  caState: number;
  /** Consecutive RTO expiries of the segment at the head of the queue (0 when none is pending). */
  retransmits: number;
  /** Exponential back-off of the RTO timer (> 0: the connection is stalled on timeouts). */
  backoff: number;
  /** Retransmission timeout, µs. */
  rtoUs: number;
  /** Smoothed RTT (RFC 6298 SRTT, sampled on every ACK), µs. */
  rttUs: number;
  /** RTT variation (RFC 6298 RTTVAR), µs. */
  rttVarUs: number;
  /** Congestion window, segments. */
  sndCwnd: number;
  /** Send MSS, bytes. */
  sndMss: number;
  /** Segments sent and not yet acknowledged. */
  unacked: number;
  /** Segments the kernel currently considers lost. */
  lost: number;
  /** Segments retransmitted over the connection's lifetime. */
  totalRetrans: number;
  /** Bytes of ours the peer acknowledged (RFC 4898 HCThruOctetsAcked); Linux ≥ 4.1. */
  bytesAcked?: number;
  /** Bytes received from the peer (RFC 4898 HCThruOctetsReceived); Linux ≥ 4.1. */
  bytesReceived?: number;
  /** Segments sent (pure ACKs and retransmissions included); Linux ≥ 4.2. */
  segsOut?: number;
  segsIn?: number;
  /** Bytes written by the app that TCP has not sent yet; Linux ≥ 4.6. */
  notsentBytes?: number;
  /** Lowest RTT seen, µs; Linux ≥ 4.6. */
  minRttUs?: number;
  /** Data-carrying segments sent; Linux ≥ 4.6. */
  dataSegsOut?: number;
  /** Rate of the most recent delivery sample, bytes/s (BBR's estimator); Linux ≥ 4.9. */
  deliveryRate?: number;
  /** The delivery sample was limited by the app not sending, not by the path; Linux ≥ 4.9. */
  deliveryRateAppLimited?: boolean;
  /** Bytes retransmitted; Linux ≥ 4.19. */
  bytesRetrans?: number;
}

/** Reads the fields of a raw struct tcp_info that fit in `b` (little-endian: Linux on x86 and arm). */
export function parseTcpInfo(b: Buffer): TcpInfo | undefined {
  if (b.length < 104) return undefined; // everything up to tcpi_total_retrans: Linux 2.6
  const u32 = (off: number): number => b.readUInt32LE(off);
  const has = (off: number, size: number): boolean => b.length >= off + size;
  const u64 = (off: number): number => Number(b.readBigUInt64LE(off));
  const info: TcpInfo = {
    state: b[0] as number,
    caState: b[1] as number,
    retransmits: b[2] as number,
    backoff: b[4] as number,
    rtoUs: u32(8),
    sndMss: u32(16),
    unacked: u32(24),
    lost: u32(32),
    rttUs: u32(68),
    rttVarUs: u32(72),
    sndCwnd: u32(80),
    totalRetrans: u32(100),
  };
  if (has(128, 8)) {
    info.bytesAcked = u64(120);
    info.bytesReceived = u64(128);
  }
  if (has(140, 4)) {
    info.segsOut = u32(136);
    info.segsIn = u32(140);
  }
  if (has(156, 4)) {
    info.notsentBytes = u32(144);
    info.minRttUs = u32(148);
    info.dataSegsOut = u32(156);
  }
  if (has(160, 8)) {
    info.deliveryRate = u64(160);
    // tcpi_delivery_rate_app_limited:1 is the low bit of byte 7 (first bit-field, little-endian).
    info.deliveryRateAppLimited = ((b[7] as number) & 1) === 1;
  }
  if (has(208, 8)) info.bytesRetrans = u64(208);
  return info;
}

/** TCP_INFO of a TCP socket (the TCP socket under TLS / WebSocket); undefined where unavailable. */
export function readTcpInfo(socket: Socket): TcpInfo | undefined {
  const raw = readTcpInfoBuffer(socket);
  return raw === undefined ? undefined : parseTcpInfo(raw);
}
