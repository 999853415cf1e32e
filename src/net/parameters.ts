/**
 * Parameters pick the protocol stack and its options (Network framework's NWParameters):
 * `Parameters.tcp()`, `.tls({psk} | {pki})`, `.ws({tls?})`, `.udp()`. Interface constraints
 * are mutable properties with Network framework's names, so they can be set after creation.
 */
import type { InterfaceType } from '../path/interfaces.js';
import { PeerlinkError } from '../errors.js';
import type { HostPortEndpoint } from './endpoint.js';
import { lengthPrefixFramer, type Framer } from './framer.js';
import type {
  InterfaceConstraints,
  KeepaliveOptions,
  RetryOptions,
  StreamParametersOptions,
  TcpOptions,
  TlsOptions,
  UdpParametersOptions,
  WsParametersOptions,
} from './options.js';

export type TransportProtocol = 'tcp' | 'udp';
export type ApplicationProtocol = 'none' | 'framer' | 'ws';

export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024;

export interface ResolvedKeepalive {
  interval: number;
  timeout: number;
}

export interface ResolvedRetry {
  initialDelay: number;
  maxDelay: number;
  automatic: boolean;
}

export interface WsSettings {
  path?: string;
  subprotocols: string[];
}

export interface UdpSettings {
  flowLimit: number;
  idleTimeout: number;
  datagramOverhead: number;
  receiveQueueLimit: number;
}

function resolveKeepalive(k: KeepaliveOptions | boolean | undefined, defaultOn: boolean): ResolvedKeepalive | undefined {
  if (k === false || (k === undefined && !defaultOn)) return undefined;
  const opts = k === true || k === undefined ? {} : k;
  const interval = opts.interval ?? 10_000;
  const timeout = opts.timeout ?? interval * 3;
  if (!(interval > 0) || !(timeout > 0)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'keepalive interval and timeout must be positive');
  return { interval, timeout };
}

function resolveRetry(r: RetryOptions | undefined): ResolvedRetry {
  return { initialDelay: r?.initialDelay ?? 250, maxDelay: r?.maxDelay ?? 10_000, automatic: r?.automatic ?? true };
}

export class Parameters implements InterfaceConstraints {
  /** The transport under everything. */
  readonly transport: TransportProtocol;
  /** What runs on top of the transport (and TLS): nothing (byte stream), a framer, or WebSocket. */
  readonly application: ApplicationProtocol;
  readonly tls: TlsOptions | undefined;
  readonly tcp: TcpOptions;
  readonly framer: Framer | undefined;
  readonly maxMessageSize: number;
  /** Application keepalive (framer, ws); undefined = off. */
  readonly keepalive: ResolvedKeepalive | undefined;
  readonly retry: ResolvedRetry;
  readonly ws: WsSettings | undefined;
  readonly udp: UdpSettings | undefined;

  // Network framework's constraints (src/path's PathConstraints), mutable as on NWParameters.
  requiredInterface?: string;
  requiredInterfaceType?: InterfaceType;
  prohibitedInterfaces?: string[];
  prohibitedInterfaceTypes?: InterfaceType[];
  prohibitExpensivePaths?: boolean;
  prohibitConstrainedPaths?: boolean;
  requiredLocalEndpoint?: HostPortEndpoint;

  private constructor(init: {
    transport: TransportProtocol;
    application: ApplicationProtocol;
    tls?: TlsOptions;
    tcp?: TcpOptions;
    framer?: Framer;
    maxMessageSize?: number;
    keepalive?: ResolvedKeepalive;
    retry?: RetryOptions;
    ws?: WsSettings;
    udp?: UdpSettings;
    constraints: InterfaceConstraints;
  }) {
    this.transport = init.transport;
    this.application = init.application;
    this.tls = init.tls;
    this.tcp = { noDelay: true, ...init.tcp };
    this.framer = init.framer;
    this.maxMessageSize = init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.keepalive = init.keepalive;
    this.retry = resolveRetry(init.retry);
    this.ws = init.ws;
    this.udp = init.udp;
    const c = init.constraints;
    if (c.requiredInterface !== undefined) this.requiredInterface = c.requiredInterface;
    if (c.requiredInterfaceType !== undefined) this.requiredInterfaceType = c.requiredInterfaceType;
    if (c.prohibitedInterfaces !== undefined) this.prohibitedInterfaces = [...c.prohibitedInterfaces];
    if (c.prohibitedInterfaceTypes !== undefined) this.prohibitedInterfaceTypes = [...c.prohibitedInterfaceTypes];
    if (c.prohibitExpensivePaths !== undefined) this.prohibitExpensivePaths = c.prohibitExpensivePaths;
    if (c.prohibitConstrainedPaths !== undefined) this.prohibitConstrainedPaths = c.prohibitConstrainedPaths;
    if (c.requiredLocalEndpoint !== undefined) this.requiredLocalEndpoint = c.requiredLocalEndpoint;
  }

  /** Plain TCP: a byte stream, or messages with `framer`. */
  static tcp(options: StreamParametersOptions = {}): Parameters {
    return Parameters.stream(undefined, options);
  }

  /** TLS over TCP, with certificates (`{pki}`) or a pre-shared key (`{psk}`). */
  static tls(tls: TlsOptions, options: StreamParametersOptions = {}): Parameters {
    if (!tls || (!tls.pki && !tls.psk)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'Parameters.tls() needs {pki: ...} or {psk: ...}');
    return Parameters.stream(tls, options);
  }

  /** WebSocket (RFC 6455) over TCP, or over TLS with `tls`. Message protocol. */
  static ws(options: WsParametersOptions = {}): Parameters {
    const ws: WsSettings = { subprotocols: options.subprotocols ?? [] };
    if (options.path !== undefined) ws.path = options.path;
    const keepalive = resolveKeepalive(options.keepalive, true);
    return new Parameters({
      transport: 'tcp',
      application: 'ws',
      ...(options.tls ? { tls: options.tls } : {}),
      ...(options.tcp ? { tcp: options.tcp } : {}),
      ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
      ...(keepalive ? { keepalive } : {}),
      ws,
      constraints: options,
    });
  }

  /** UDP flows: one Connection per 4-tuple; each datagram is one message. */
  static udp(options: UdpParametersOptions = {}): Parameters {
    return new Parameters({
      transport: 'udp',
      application: 'none',
      ...(options.retry ? { retry: options.retry } : {}),
      udp: {
        flowLimit: options.flowLimit ?? 256,
        idleTimeout: options.idleTimeout ?? 120_000,
        datagramOverhead: options.datagramOverhead ?? 0,
        receiveQueueLimit: options.receiveQueueLimit ?? 1024,
      },
      constraints: options,
    });
  }

  private static stream(tls: TlsOptions | undefined, options: StreamParametersOptions): Parameters {
    const framer = options.framer === true ? lengthPrefixFramer : options.framer || undefined;
    const keepalive = framer ? resolveKeepalive(options.keepalive, false) : undefined;
    if (options.keepalive && !framer) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'keepalive needs a message framer (framer: true) or WebSocket');
    if (keepalive && framer && !framer.supportsControlFrames) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `framer "${framer.name}" cannot carry keepalive frames`);
    return new Parameters({
      transport: 'tcp',
      application: framer ? 'framer' : 'none',
      ...(tls ? { tls } : {}),
      ...(options.tcp ? { tcp: options.tcp } : {}),
      ...(framer ? { framer } : {}),
      ...(options.maxMessageSize !== undefined ? { maxMessageSize: options.maxMessageSize } : {}),
      ...(keepalive ? { keepalive } : {}),
      ...(options.retry ? { retry: options.retry } : {}),
      constraints: options,
    });
  }

  /** True when the connection carries messages (framer, ws, udp) rather than a byte stream. */
  get isMessageProtocol(): boolean {
    return this.application !== 'none' || this.transport === 'udp';
  }

  /** The interface constraints, as a plain object (for src/path). */
  get constraints(): InterfaceConstraints {
    return {
      ...(this.requiredInterface !== undefined ? { requiredInterface: this.requiredInterface } : {}),
      ...(this.requiredInterfaceType !== undefined ? { requiredInterfaceType: this.requiredInterfaceType } : {}),
      ...(this.prohibitedInterfaces !== undefined ? { prohibitedInterfaces: this.prohibitedInterfaces } : {}),
      ...(this.prohibitedInterfaceTypes !== undefined ? { prohibitedInterfaceTypes: this.prohibitedInterfaceTypes } : {}),
      ...(this.prohibitExpensivePaths !== undefined ? { prohibitExpensivePaths: this.prohibitExpensivePaths } : {}),
      ...(this.prohibitConstrainedPaths !== undefined ? { prohibitConstrainedPaths: this.prohibitConstrainedPaths } : {}),
      ...(this.requiredLocalEndpoint !== undefined ? { requiredLocalEndpoint: this.requiredLocalEndpoint } : {}),
    };
  }

  /** A short description of the stack for reports: `tls(psk)+framer over tcp`. */
  describe(): string {
    const parts: string[] = [];
    if (this.tls) parts.push(this.tls.psk ? 'tls(psk)' : 'tls(pki)');
    if (this.application === 'framer') parts.push(`framer(${this.framer?.name ?? '?'})`);
    if (this.application === 'ws') parts.push('ws');
    return parts.length ? `${parts.join('+')} over ${this.transport}` : this.transport;
  }
}
