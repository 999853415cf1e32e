/**
 * PeerSession options, their defaults, and the net Parameters they turn into.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Parameters, parsePsk } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { resolveWideArea, type Mdns, type ResolvedWideArea, type WideAreaOptions } from '../dnssd/index.js';
import { PeerID, validateDisplayName } from './peer-id.js';
import type { Architecture } from './dedup.js';
import type { HelloRole } from './protocol/messages.js';
import { STREAM_CHUNK_MAX } from './message-stream.js';
import { resolveBudgets, type SessionBudgets } from './budgets.js';
import type { FreeSpaceFloor } from './resource-store.js';
import type { ResourceOffer } from './resource-receive.js';

/** `PeerSessionOptions.resources` (docs/resources.md). */
export interface SessionResourceOptions {
  /** Download directory; created if missing. Default: a fresh private directory under os.tmpdir(). */
  directory?: string;
  /** Most bytes this session may write there (saved files + transfers in progress). Default: no limit. */
  quota?: number;
  /** Free space always left on the file system: the larger of the two. Default `{fraction: 0.05, bytes: 1 GiB}`. */
  freeSpaceFloor?: FreeSpaceFloor;
  /**
   * Decides on each incoming offer (may ask a person: it may take up to `acceptTimeout`).
   * Without it, a `resource` listener accepts every offer; with neither, offers are refused
   * (ERR_RESOURCE_REFUSED) before a byte is written.
   */
  accept?: (offer: ResourceOffer) => boolean | Promise<boolean>;
  /** How long an offer waits for the receiver's decision, ms (the sender's wait, and the receiver's). Default 300 000 (5 min). */
  acceptTimeout?: number;
}

export type SessionSecurity = { mode: 'none' } | { mode: 'psk'; key: string | Uint8Array; identity?: string };

export interface PeerSessionOptions {
  /** Bare service name: `chat` is advertised and browsed as `_chat._tcp` (1–15 letters, digits, '-'). */
  serviceType: string;
  /** Name shown to people; default: this host's name with a short random suffix. */
  displayName?: string;
  /** Our identity; default: a new random PeerID (see PeerID.loadOrCreate for persistence). */
  peerId?: PeerID;
  /** Default `{mode: 'none'}`. */
  security?: SessionSecurity;
  /** Default 'star'. */
  architecture?: Architecture;
  /** client-server only: this peer's role. */
  role?: 'server' | 'client';
  /** Connect to every compatible peer found by browsing. Default true. */
  autoConnect?: boolean;
  /** Advertise our service (star, and the server of client-server). Default true. */
  advertise?: boolean;
  /** Browse for peers (star, and the clients of client-server). Default true. */
  browse?: boolean;
  /** Interfaces for discovery and connections; `lo` is used only when named. Default: the dnssd default. */
  interfaces?: string[];
  /** Largest app message, bytes, sent or received. Default 4 MiB. */
  maxMessageSize?: number;
  /** PING period on the control connection, ms. Default 2000. */
  keepaliveInterval?: number;
  /** Silence after which a peer is notConnected, ms. Default 6000 (detected within interval + timeout ≤ 8 s). */
  keepaliveTimeout?: number;
  /** Control connection transport: length-prefix framer over TCP/TLS (default) or WebSocket. */
  transport?: 'framer' | 'ws';
  /** App keys for the TXT record (MC's discoveryInfo). Reserved: v, sec, id, arch. */
  discoveryInfo?: Record<string, string>;
  /** Put our peer id in the TXT record (fewer duplicate dials; costs privacy). Default false. */
  includePeerIdInTxt?: boolean;
  /** Bonjour instance name; default the display name. */
  instanceName?: string;
  /** Listener port; default 0 (any). */
  port?: number;
  /** Time a dial (TCP + TLS + HELLO/WELCOME) may take, ms. Default 10 000. */
  connectionTimeout?: number;
  /** Reconnection back-off, ms. Defaults 200 and 5000. */
  reconnect?: { initialDelay?: number; maxDelay?: number };
  /** A dnssd engine to share between sessions of one process (not closed by the session). Default: the session's own. */
  mdns?: Mdns;
  /** Resource transfers (see docs/session.md). */
  resources?: SessionResourceOptions;
  /** Limits on what peers can make the session hold or do (docs/security.md). Default DEFAULT_BUDGETS. */
  budgets?: Partial<SessionBudgets>;
  /**
   * Wide-area DNS-SD (docs/wide-area.md): also register in and browse these unicast DNS
   * domains, with TSIG-signed updates. `{domains: ['example.com'], tsig: readKeyFile(path)}`.
   */
  wideArea?: WideAreaOptions;
}

export const RESERVED_TXT_KEYS = new Set(['v', 'sec', 'id', 'arch']);

export interface ResolvedSessionOptions {
  serviceType: string;
  bonjourType: string;
  peerId: PeerID;
  instanceName: string;
  security: SessionSecurity;
  architecture: Architecture;
  role: HelloRole;
  autoConnect: boolean;
  listen: boolean;
  advertise: boolean;
  browse: boolean;
  interfaces: string[] | undefined;
  maxMessageSize: number;
  keepaliveInterval: number;
  keepaliveTimeout: number;
  transport: 'framer' | 'ws';
  discoveryInfo: Record<string, string>;
  includePeerIdInTxt: boolean;
  port: number;
  connectionTimeout: number;
  reconnectInitialDelay: number;
  reconnectMaxDelay: number;
  resources: SessionResourceOptions;
  mdns: Mdns | undefined;
  budgets: SessionBudgets;
  wideArea: ResolvedWideArea | undefined;
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${name} must be a positive number of milliseconds/bytes, got ${String(v)}`);
  return v;
}

export function defaultDisplayName(): string {
  const host = hostname().split('.')[0] || 'peer';
  return `${host.slice(0, 50)}-${randomBytes(2).toString('hex')}`;
}

export function resolveOptions(o: PeerSessionOptions): ResolvedSessionOptions {
  if (typeof o.serviceType !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?$/.test(o.serviceType) || !/[A-Za-z]/.test(o.serviceType)) {
    throw new PeerlinkError('ERR_INVALID_SERVICE_TYPE', `serviceType "${String(o.serviceType)}" must be a bare service name (1–15 letters, digits or '-', e.g. "chat"); it is advertised as _NAME._tcp`);
  }
  const peerId = o.peerId ?? PeerID.generate(o.displayName ?? defaultDisplayName());
  if (o.peerId && o.displayName !== undefined && o.displayName !== o.peerId.displayName) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'give either displayName or peerId (whose displayName is used), not both');
  }
  const architecture = o.architecture ?? 'star';
  if (architecture !== 'star' && architecture !== 'client-server') throw new PeerlinkError('ERR_INVALID_ARGUMENT', `architecture must be 'star' or 'client-server'`);
  let role: HelloRole = 'peer';
  if (architecture === 'client-server') {
    if (o.role !== 'server' && o.role !== 'client') throw new PeerlinkError('ERR_INVALID_ARGUMENT', "client-server needs role: 'server' or 'client'");
    role = o.role;
  } else if (o.role !== undefined) throw new PeerlinkError('ERR_INVALID_ARGUMENT', "role applies to architecture 'client-server' only");
  const security = o.security ?? { mode: 'none' };
  if (security.mode === 'psk') parsePsk(security.key);
  else if (security.mode !== 'none') throw new PeerlinkError('ERR_INVALID_ARGUMENT', "security.mode must be 'none' or 'psk'");
  const discoveryInfo = { ...(o.discoveryInfo ?? {}) };
  for (const k of Object.keys(discoveryInfo)) {
    if (RESERVED_TXT_KEYS.has(k.toLowerCase())) throw new PeerlinkError('ERR_INVALID_TXT', `discoveryInfo key "${k}" is reserved by the session (v, sec, id, arch)`);
  }
  const keepaliveInterval = positive('keepaliveInterval', o.keepaliveInterval, 2000);
  const keepaliveTimeout = positive('keepaliveTimeout', o.keepaliveTimeout, Math.max(6000, keepaliveInterval * 3));
  if (keepaliveTimeout <= keepaliveInterval) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'keepaliveTimeout must be longer than keepaliveInterval');
  const listen = !(architecture === 'client-server' && role === 'client');
  const transport = o.transport ?? 'framer';
  if (transport !== 'framer' && transport !== 'ws') throw new PeerlinkError('ERR_INVALID_ARGUMENT', "transport must be 'framer' or 'ws'");
  return {
    serviceType: o.serviceType,
    bonjourType: `_${o.serviceType}._tcp`,
    peerId,
    instanceName: validateDisplayName(o.instanceName ?? peerId.displayName),
    security,
    architecture,
    role,
    autoConnect: o.autoConnect ?? true,
    listen,
    advertise: listen && (o.advertise ?? true),
    browse: !(architecture === 'client-server' && role === 'server') && (o.browse ?? true),
    interfaces: o.interfaces ? [...o.interfaces] : undefined,
    maxMessageSize: positive('maxMessageSize', o.maxMessageSize, 4 * 1024 * 1024),
    keepaliveInterval,
    keepaliveTimeout,
    transport,
    discoveryInfo,
    includePeerIdInTxt: o.includePeerIdInTxt ?? false,
    port: o.port ?? 0,
    connectionTimeout: positive('connectionTimeout', o.connectionTimeout, 10_000),
    reconnectInitialDelay: positive('reconnect.initialDelay', o.reconnect?.initialDelay, 200),
    reconnectMaxDelay: positive('reconnect.maxDelay', o.reconnect?.maxDelay, 5000),
    resources: { ...(o.resources ?? {}) },
    mdns: o.mdns,
    budgets: resolveBudgets(o.budgets),
    wideArea: resolveWideArea(o.wideArea),
  };
}

/**
 * The Parameters for every session connection (control and stream alike, so one listener
 * serves both). The framer limit covers the larger of a DATA message (+1 type byte) and a
 * stream chunk; the session enforces the DATA limit itself. Transport keepalives are off:
 * the session runs its own (control-channel.ts). Retries are off: the session backs off per peer.
 */
export function buildParameters(o: ResolvedSessionOptions): Parameters {
  const maxMessageSize = Math.max(o.maxMessageSize + 1, STREAM_CHUNK_MAX + 1024);
  const tcp = { noDelay: true, connectionTimeout: o.connectionTimeout };
  const retry = { automatic: false };
  const tls = o.security.mode === 'psk' ? { psk: { key: o.security.key, ...(o.security.identity !== undefined ? { identity: o.security.identity } : {}) } } : undefined;
  if (o.transport === 'ws') {
    return Parameters.ws({ ...(tls ? { tls } : {}), maxMessageSize, keepalive: false, tcp, retry, path: `/peerlink/${o.serviceType}` });
  }
  return tls ? Parameters.tls(tls, { framer: true, maxMessageSize, tcp, retry }) : Parameters.tcp({ framer: true, maxMessageSize, tcp, retry });
}
