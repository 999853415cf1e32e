/**
 * PeerSession options, their defaults, and the net Parameters they turn into.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Parameters, parsePsk, type PkiOptions } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { resolveWideArea, type Mdns, type ResolvedWideArea, type WideAreaOptions } from '../dnssd/index.js';
import { PeerID, validateDisplayName } from './peer-id.js';
import type { Architecture } from './dedup.js';
import type { HelloRole } from './protocol/messages.js';
import { STREAM_CHUNK_MAX } from './message-stream.js';
import { resolveBudgets, type SessionBudgets } from './budgets.js';
import type { FreeSpaceFloor } from './resource-store.js';
import type { ResourceOffer } from './resource-receive.js';
import { DEFAULT_LINK_THRESHOLDS, type LinkBoundary, type LinkQualityThresholds } from './link-quality.js';
import { DEFAULT_LINK_INTERVAL, type LinkTimers } from './link-monitor.js';
import { SessionIdentity, chainIsConsistent, type PemIdentity } from './trust/identity.js';
import { KnownPeers } from './trust/known-peers.js';
import { lockProfile, type ProfileLock } from './trust/profile.js';
import type { TrustPolicy } from './trust/gate.js';

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
  /**
   * How long an outgoing transfer whose peer was lost mid-way waits (state `paused`) for the
   * peer to be connected again, ms; then ERR_RESOURCE_PEER_LOST. 0: fail at once
   * (ERR_RESOURCE_ABORTED). Default 600 000 (10 min).
   */
  resumeTimeout?: number;
}

/**
 * `security: {mode: 'pki'}` (docs/security.md "Trust"): TLS 1.3 with mutual authentication by
 * key; the peer id is derived from the public key; known peers connect silently, new ones are
 * verified with a code (the `verify` event) unless `trustNew`.
 */
export interface PkiSecurity extends TrustPolicy {
  mode: 'pki';
  /** Our certificate and key (PEM). Default: the identity in `identityDir`, else a new one for this run. */
  identity?: PemIdentity;
  /**
   * Keep the identity (generated the first time) and the known peers here; held by this
   * session while it runs (ERR_IDENTITY_IN_USE if another one holds it). Default: nothing is
   * kept — a new identity each run, known peers in memory (the privacy default).
   */
  identityDir?: string;
}

export type SessionSecurity = { mode: 'none' } | { mode: 'psk'; key: string | Uint8Array; identity?: string } | PkiSecurity;

/** What a PKI session runs with (resolved from PkiSecurity). */
export interface ResolvedPki {
  identity: SessionIdentity;
  known: KnownPeers;
  lock: ProfileLock | undefined;
  /** The TLS options, whose `cert` is filled in by start() (ensureCertificate). */
  tls: PkiOptions;
}

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
  /**
   * Keepalive exchanges a second the session aims at across all its peers. With more than
   * keepaliveRate × keepaliveInterval / 1000 peers (default 20), interval and timeout stretch
   * to peers ÷ keepaliveRate seconds and in proportion, up to a 30 s interval (100 peers: 9.9 s and 29.7 s), so idle
   * keepalive traffic grows with the number of peers, not its square. Default 10.
   */
  keepaliveRate?: number;
  /**
   * Give the malloc heap's free pages back to the kernel (glibc malloc_trim) once a burst of 16
   * or more connections has been quiet for 10 s (memory-trim.ts; docs/memory.md). Process-wide,
   * a few ms, at most once per quiet period. Default true; Linux with glibc only.
   */
  trimMemory?: boolean;
  /**
   * How long a peer whose connection's path went away (its interface down or gone: the
   * `viability` event) is kept, waiting for the path to come back, before it is dropped
   * (ERR_PATH_LOST), ms. Default min(3000, keepaliveTimeout − keepaliveInterval); must be
   * shorter than keepaliveTimeout.
   */
  viabilityGrace?: number;
  /** Most bytes of reliable sends held for one peer while its path is down. Default max(8 MiB, maxMessageSize). */
  viabilityHoldBytes?: number;
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
  /**
   * Privacy mode (docs/security.md "Privacy"): a random instance name and a random mDNS host name
   * each run instead of the device's, no id in TXT, a new random peer id each run (a given
   * `peerId`, `instanceName`, `includePeerIdInTxt: true` or shared `mdns` engine is refused), and
   * a random default display name. Default false.
   */
  privacy?: boolean;
  /** Best-effort messages (`send(data, {mode: 'unreliable'})`, docs/session.md "Datagrams"). Default enabled; `false` turns them off. */
  datagrams?: boolean | DatagramOptions;
  /** Link-quality estimate per peer (docs/session.md "Link quality"). */
  linkQuality?: SessionLinkQualityOptions;
}

export interface DatagramOptions {
  /** Offer and accept datagram flows (HELLO capability DATAGRAMS). Default true. */
  enabled?: boolean;
  /** Time for a new flow to carry a probe both ways before sends reject with ERR_DATAGRAM_UNAVAILABLE, ms. Default 3000. */
  openTimeout?: number;
  /** After a flow failed, unreliable sends to that peer reject at once for this long, then a new flow is tried, ms. Default 30 000. */
  retryAfter?: number;
}

export interface SessionLinkQualityOptions {
  /** TCP_INFO sampling period, ms. Default 1000. */
  interval?: number;
  /** Boundaries, hysteresis and hold times; what is not given keeps its DEFAULT_LINK_THRESHOLDS value. */
  thresholds?: { good?: Partial<LinkBoundary>; minimal?: Partial<LinkBoundary>; hysteresis?: number; degradeAfterMs?: number; improveAfterMs?: number };
  /** Time source for the sampling (tests). Default: performance.now and unref'd intervals. */
  timers?: LinkTimers;
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
  keepaliveRate: number;
  trimMemory: boolean;
  viabilityGrace: number;
  viabilityHoldBytes: number;
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
  privacy: boolean;
  /** The mDNS host name to publish (privacy: random); undefined = the engine's default (this machine's). */
  hostName: string | undefined;
  datagrams: Required<DatagramOptions>;
  /** With security mode 'pki'. */
  pki: ResolvedPki | undefined;
  linkQuality: { interval: number; thresholds: LinkQualityThresholds; timers: LinkTimers | undefined };
}

function resolveLinkThresholds(t: NonNullable<SessionLinkQualityOptions['thresholds']> | undefined): LinkQualityThresholds {
  const d = DEFAULT_LINK_THRESHOLDS;
  const boundary = (name: string, b: Partial<LinkBoundary> | undefined, dflt: LinkBoundary): LinkBoundary => ({
    rttMs: positive(`linkQuality.thresholds.${name}.rttMs`, b?.rttMs, dflt.rttMs),
    lossRate: positive(`linkQuality.thresholds.${name}.lossRate`, b?.lossRate, dflt.lossRate),
    capacityBps: positive(`linkQuality.thresholds.${name}.capacityBps`, b?.capacityBps, dflt.capacityBps),
  });
  const hysteresis = t?.hysteresis ?? d.hysteresis;
  if (!(hysteresis > 0 && hysteresis <= 1)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `linkQuality.thresholds.hysteresis must be in (0, 1], got ${String(hysteresis)}`);
  return {
    good: boundary('good', t?.good, d.good),
    minimal: boundary('minimal', t?.minimal, d.minimal),
    hysteresis,
    degradeAfterMs: t?.degradeAfterMs === 0 ? 0 : positive('linkQuality.thresholds.degradeAfterMs', t?.degradeAfterMs, d.degradeAfterMs),
    improveAfterMs: t?.improveAfterMs === 0 ? 0 : positive('linkQuality.thresholds.improveAfterMs', t?.improveAfterMs, d.improveAfterMs),
  };
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

/** `Peer-3f9a1c0d`: 32 random bits, new each call (privacy mode's names). */
function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export function resolveOptions(o: PeerSessionOptions): ResolvedSessionOptions {
  if (typeof o.serviceType !== 'string' || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?$/.test(o.serviceType) || !/[A-Za-z]/.test(o.serviceType)) {
    throw new PeerlinkError('ERR_INVALID_SERVICE_TYPE', `serviceType "${String(o.serviceType)}" must be a bare service name (1–15 letters, digits or '-', e.g. "chat"); it is advertised as _NAME._tcp`);
  }
  const privacy = o.privacy === true;
  if (privacy) {
    // Anything stable in the advertisement (or a persisted id or key) lets a device be followed across networks.
    const sec = o.security;
    const stable = o.peerId !== undefined ? 'peerId (a persistent id)' : o.instanceName !== undefined ? 'instanceName' : o.includePeerIdInTxt === true ? 'includePeerIdInTxt' : o.mdns !== undefined ? 'mdns (a shared engine publishes its own host name)'
      : sec?.mode === 'pki' && (sec.identity !== undefined || sec.identityDir !== undefined) ? 'a pki identity (a stable key; privacy uses a new key each run, so every contact is a first contact)' : undefined;
    if (stable) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `privacy: true uses a new random id and random names each run; ${stable} cannot be given with it`);
  }
  const displayName = o.displayName ?? (privacy ? randomName('Peer') : defaultDisplayName());
  if (o.peerId && o.displayName !== undefined && o.displayName !== o.peerId.displayName) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'give either displayName or peerId (whose displayName is used), not both');
  }
  const security = o.security ?? { mode: 'none' };
  if (security.mode === 'psk') parsePsk(security.key);
  else if (security.mode !== 'none' && security.mode !== 'pki') throw new PeerlinkError('ERR_INVALID_ARGUMENT', "security.mode must be 'none', 'psk' or 'pki'");
  const pki = security.mode === 'pki' ? resolvePki(security) : undefined;
  let peerId: PeerID;
  if (pki) {
    // The id is the key's: it cannot be chosen (DESIGN.md §6 "Peer ids").
    peerId = PeerID.fromBytes(pki.identity.idBytes, o.peerId?.displayName ?? displayName);
    if (o.peerId && !o.peerId.equals(peerId)) {
      pki.lock?.release();
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `with security 'pki' the peer id is derived from the key (${peerId.id}); give displayName, not another peerId`);
    }
  } else peerId = o.peerId ?? PeerID.generate(displayName);
  const architecture = o.architecture ?? 'star';
  if (architecture !== 'star' && architecture !== 'client-server') throw new PeerlinkError('ERR_INVALID_ARGUMENT', `architecture must be 'star' or 'client-server'`);
  let role: HelloRole = 'peer';
  if (architecture === 'client-server') {
    if (o.role !== 'server' && o.role !== 'client') throw new PeerlinkError('ERR_INVALID_ARGUMENT', "client-server needs role: 'server' or 'client'");
    role = o.role;
  } else if (o.role !== undefined) throw new PeerlinkError('ERR_INVALID_ARGUMENT', "role applies to architecture 'client-server' only");
  const discoveryInfo = { ...(o.discoveryInfo ?? {}) };
  for (const k of Object.keys(discoveryInfo)) {
    if (RESERVED_TXT_KEYS.has(k.toLowerCase())) throw new PeerlinkError('ERR_INVALID_TXT', `discoveryInfo key "${k}" is reserved by the session (v, sec, id, arch)`);
  }
  const keepaliveInterval = positive('keepaliveInterval', o.keepaliveInterval, 2000);
  const keepaliveTimeout = positive('keepaliveTimeout', o.keepaliveTimeout, Math.max(6000, keepaliveInterval * 3));
  if (keepaliveTimeout <= keepaliveInterval) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'keepaliveTimeout must be longer than keepaliveInterval');
  const keepaliveRate = positive('keepaliveRate', o.keepaliveRate, 10);
  // Inside the keepalive window: a path that does not come back must not keep a peer longer than silence would.
  const viabilityGrace = positive('viabilityGrace', o.viabilityGrace, Math.min(3000, keepaliveTimeout - keepaliveInterval));
  if (viabilityGrace >= keepaliveTimeout) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `viabilityGrace (${viabilityGrace} ms) must be shorter than keepaliveTimeout (${keepaliveTimeout} ms)`);
  const maxMessageSize = positive('maxMessageSize', o.maxMessageSize, 4 * 1024 * 1024);
  const listen = !(architecture === 'client-server' && role === 'client');
  const transport = o.transport ?? 'framer';
  if (transport !== 'framer' && transport !== 'ws') throw new PeerlinkError('ERR_INVALID_ARGUMENT', "transport must be 'framer' or 'ws'");
  return {
    serviceType: o.serviceType,
    bonjourType: `_${o.serviceType}._tcp`,
    peerId,
    instanceName: validateDisplayName(o.instanceName ?? (privacy ? randomName('Peer') : peerId.displayName)),
    security,
    architecture,
    role,
    autoConnect: o.autoConnect ?? true,
    listen,
    advertise: listen && (o.advertise ?? true),
    browse: !(architecture === 'client-server' && role === 'server') && (o.browse ?? true),
    interfaces: o.interfaces ? [...o.interfaces] : undefined,
    maxMessageSize,
    keepaliveInterval,
    keepaliveTimeout,
    keepaliveRate,
    trimMemory: o.trimMemory ?? true,
    viabilityGrace,
    viabilityHoldBytes: positive('viabilityHoldBytes', o.viabilityHoldBytes, Math.max(8 * 1024 * 1024, maxMessageSize)),
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
    privacy,
    hostName: privacy ? randomName('h').toLowerCase() : undefined,
    datagrams: resolveDatagrams(o.datagrams),
    pki,
    linkQuality: {
      interval: positive('linkQuality.interval', o.linkQuality?.interval, DEFAULT_LINK_INTERVAL),
      thresholds: resolveLinkThresholds(o.linkQuality?.thresholds),
      timers: o.linkQuality?.timers,
    },
  };
}

function resolveDatagrams(d: boolean | DatagramOptions | undefined): Required<DatagramOptions> {
  const o = typeof d === 'boolean' ? { enabled: d } : (d ?? {});
  return {
    enabled: o.enabled ?? true,
    openTimeout: positive('datagrams.openTimeout', o.openTimeout, 3000),
    retryAfter: positive('datagrams.retryAfter', o.retryAfter, 30_000),
  };
}

function resolvePki(sec: PkiSecurity): ResolvedPki {
  if (sec.identity !== undefined && sec.identityDir !== undefined) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'give security.identity or security.identityDir, not both');
  let identity: SessionIdentity;
  let lock: ProfileLock | undefined;
  if (sec.identity !== undefined) identity = SessionIdentity.fromPem(sec.identity);
  else if (sec.identityDir !== undefined) {
    lock = lockProfile(sec.identityDir);
    try {
      identity = SessionIdentity.inDirectory(sec.identityDir);
    } catch (err) {
      lock.release();
      throw err;
    }
  } else identity = SessionIdentity.ephemeral();
  const known = sec.identityDir !== undefined ? KnownPeers.inDirectory(sec.identityDir) : new KnownPeers();
  const tls: PkiOptions = {
    key: identity.keyPem,
    requireClientCertificate: true,
    // Self-signed keys: the chain must hang together; whose key it is, the session decides (trust/gate.ts).
    verify: (chain) => chainIsConsistent(chain),
  };
  if (identity.certPem !== undefined) tls.cert = identity.certPem;
  return { identity, known, lock, tls };
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
  // PKI sessions are TLS 1.3 only (narrower than DESIGN.md §1): its exporter and encrypted certificates.
  const tls = o.security.mode === 'psk' ? { psk: { key: o.security.key, ...(o.security.identity !== undefined ? { identity: o.security.identity } : {}) } } : o.pki ? { pki: o.pki.tls, minVersion: 'TLSv1.3' as const } : undefined;
  if (o.transport === 'ws') {
    return Parameters.ws({ ...(tls ? { tls } : {}), maxMessageSize, keepalive: false, tcp, retry, path: `/peerlink/${o.serviceType}` });
  }
  return tls ? Parameters.tls(tls, { framer: true, maxMessageSize, tcp, retry }) : Parameters.tcp({ framer: true, maxMessageSize, tcp, retry });
}
