/**
 * The shapes of PeerSession's public API (session.ts): send, stream and connect options, the
 * peer information it reports, and the stream kinds it offers.
 */
import type { Duplex } from 'node:stream';
import type { PeerID } from './peer-id.js';
import type { PeerState } from './peer-record.js';
import { StreamKind } from './protocol/messages.js';
import type { DatagramFlowStats } from './datagram-flow.js';
import type { LinkQuality } from './link-quality.js';

export interface SendOptions {
  /** One peer or several; default every connected peer. */
  to?: PeerID | readonly PeerID[];
  /**
   * 'reliable' (default): in order over the control connection. 'unreliable' (MC's
   * .unreliable): one datagram per peer over the peer's UDP flow — may be lost or reordered,
   * never corrupted; at most maximumDatagramSize(peer) bytes (else ERR_DATAGRAM_TOO_LARGE);
   * ERR_DATAGRAM_UNAVAILABLE when the peer has no datagram flow (docs/session.md "Datagrams").
   */
  mode?: 'reliable' | 'unreliable';
}

export interface OpenStreamOptions {
  /** 'app' (default) surfaces as a `stream` event; 'resource' is for the session's resource transfers. */
  kind?: 'app' | 'resource';
  /** Bytes given to the receiving side with the stream (≤ 4096). */
  meta?: Uint8Array;
}

export interface ConnectOptions {
  signal?: AbortSignal;
}

export interface PeerInfo {
  peer: PeerID;
  state: PeerState;
  /** The peer's discoveryInfo (TXT app keys), when it was found by browsing. */
  discoveryInfo: Record<string, string>;
  instanceName: string;
  /** Smoothed keepalive round-trip time. */
  rttMs?: number;
  /**
   * The keepalive on the peer's connection now: PING period and the silence after which the
   * peer is dropped, ms (keepaliveInterval / keepaliveTimeout, stretched past
   * keepaliveRate × keepaliveInterval peers: docs/session.md "Liveness"). While connected.
   */
  keepalive?: { intervalMs: number; timeoutMs: number };
  /**
   * False while the path under the peer's connection is down (its interface went away) and
   * the session waits `viabilityGrace` for it to return; true otherwise (`viability` event).
   */
  viable: boolean;
  /** Remote address of the control connection. */
  address?: string;
  /** The peer's datagram flow, once one was requested on its current connection. */
  datagrams?: DatagramFlowStats;
  /** PKI: `verifying` while the two sides establish trust (first contact: a code to compare), then `trusted`. */
  trust?: 'verifying' | 'trusted';
  /** PKI: `sha256/BASE64` of the peer's public key. */
  fingerprint?: string;
  /** The rated link to the peer ('unknown' while not connected or not measured yet); details: session.linkQuality(peer). */
  linkQuality: LinkQuality;
}

/** Handler for a non-app stream kind (resources). */
export type StreamKindHandler = (stream: Duplex, name: string, meta: Buffer, peer: PeerID) => void;

/** Stream kinds by name → their STREAM_OFFER code. */
export const STREAM_KIND_CODES = { app: StreamKind.APP, resource: StreamKind.RESOURCE } as const;

/** Where a session is in its life (start() … close()). */
export type SessionLifecycle = 'idle' | 'starting' | 'running' | 'closing' | 'closed';
