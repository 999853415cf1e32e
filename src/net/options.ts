/**
 * Option types for Parameters. All durations are in milliseconds (Network framework uses
 * seconds; Node uses milliseconds, and this is a Node library).
 */
import type { X509Certificate } from 'node:crypto';
import type { PathConstraints } from '../path/constraints.js';
import type { Framer } from './framer.js';
import type { HostPortEndpoint } from './endpoint.js';

/**
 * Network framework's interface constraints, by the same names: src/path's PathConstraints
 * (requiredInterface, requiredInterfaceType, prohibitedInterfaces, prohibitedInterfaceTypes,
 * prohibitExpensivePaths, prohibitConstrainedPaths) plus the local endpoint to bind. With a
 * required interface the socket is pinned with SO_BINDTODEVICE where possible.
 */
export interface InterfaceConstraints extends PathConstraints {
  /** Local address / port to bind. For a listener: the address and port to listen on. */
  requiredLocalEndpoint?: HostPortEndpoint;
}

/** TCP options, Network framework's names. */
export interface TcpOptions {
  /** Disable Nagle. Default true (messages are batched by the framer instead). */
  noDelay?: boolean;
  /** TCP keepalive probes. Default false. */
  enableKeepalive?: boolean;
  /** Idle time before the first probe. Default 7 200 000 (the kernel's default). */
  keepaliveIdle?: number;
  /** Probes before the connection is dropped (TCP_KEEPCNT; needs the sockopt helper). */
  keepaliveCount?: number;
  /** Time between probes (TCP_KEEPINTVL; needs the sockopt helper). */
  keepaliveInterval?: number;
  /** How long connection establishment (TCP + TLS / WebSocket handshake) may take. Default 30 000. */
  connectionTimeout?: number;
  /**
   * Sent data not acknowledged for this long fails the connection (TCP_USER_TIMEOUT where the
   * sockopt helper is available; see docs/net.md). Default: the kernel's behaviour.
   */
  connectionDropTime?: number;
}

/**
 * Application-level keepalive for message connections (framer, ws). A ping is sent after
 * `interval` of silence; when nothing at all arrives for `timeout`, the connection fails
 * with ERR_KEEPALIVE_TIMEOUT. Catches frozen peers and silently vanished links that TCP
 * alone does not notice for minutes.
 */
export interface KeepaliveOptions {
  /** Default 10 000. */
  interval?: number;
  /** Default 3 × interval. */
  timeout?: number;
}

/** Back-off for a connection in `waiting`. */
export interface RetryOptions {
  /** First retry after this long. Default 250. */
  initialDelay?: number;
  /** The delay doubles up to this. Default 10 000. */
  maxDelay?: number;
  /** Set false to stay in `waiting` until restart(). Default true. */
  automatic?: boolean;
}

/** Information about the peer given to a PKI `verify` hook. */
export interface PeerInfo {
  /** The endpoint dialled (client side) or the remote address (server side). */
  remote: HostPortEndpoint;
  /** The server name checked (client side), if any. */
  serverName?: string;
  /** 'client' when we dialled, 'server' when we accepted. */
  role: 'client' | 'server';
}

/** TLS with certificates. */
export interface PkiOptions {
  /** Our certificate (PEM; may hold a chain, leaf first). Required for listeners. */
  cert?: string | Buffer;
  /** Our private key (PEM). */
  key?: string | Buffer;
  /**
   * Trust anchors (PEM certificates). When given they replace the system roots unless
   * `systemRoots` is true. Without `ca`, `pins` or `verify` the system roots are used.
   */
  ca?: string | Buffer | Array<string | Buffer>;
  systemRoots?: boolean;
  /**
   * Pinned SubjectPublicKeyInfo SHA-256 digests, `sha256/BASE64` (curl's form) or hex. When
   * pins are given, a chain whose leaf matches a pin is accepted (and nothing else):
   * this is how self-signed peers are trusted.
   */
  pins?: string[];
  /**
   * Custom verification, called after the handshake with the peer's chain (leaf first).
   * Replaces chain validation and host name checks unless `ca`/`pins` are also given, in
   * which case both must accept.
   */
  verify?: (chain: X509Certificate[], peer: PeerInfo) => boolean | Promise<boolean>;
  /** Client: the name to send in SNI and check the certificate against. Default: the endpoint's host. */
  serverName?: string;
  /** Listener: ask clients for a certificate. Default false. */
  requestClientCertificate?: boolean;
  /** Listener: refuse clients without an acceptable certificate. Implies requestClientCertificate. */
  requireClientCertificate?: boolean;
}

/** TLS with a pre-shared key. */
export interface PskOptions {
  /** The key: bytes, or a hex string; at least 16 bytes. */
  key: Buffer | Uint8Array | string;
  /**
   * Client: the identity to send (default DEFAULT_PSK_IDENTITY, a fixed string that says
   * nothing about the device). Listener: when set, only this identity is accepted; when
   * unset, any identity is (OpenSSL's client sends `Client_identity`).
   */
  identity?: string;
}

export type TlsSecurity = { pki: PkiOptions; psk?: never } | { psk: PskOptions; pki?: never };

export type TlsOptions = TlsSecurity & {
  /** Default 'TLSv1.2' (PSK needs 1.2 for Network framework peers). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
};

/** Options shared by every protocol stack. */
export interface CommonParametersOptions extends InterfaceConstraints {
  retry?: RetryOptions;
}

/** Options of tcp() and tls(). */
export interface StreamParametersOptions extends CommonParametersOptions {
  tcp?: TcpOptions;
  /**
   * Message framing: `true` for the length-prefix framer, or a custom Framer. Without a
   * framer the connection is a byte stream (receive(), stream()).
   */
  framer?: boolean | Framer;
  /** Largest message accepted from the peer (framer). Default 64 MiB. */
  maxMessageSize?: number;
  /** Application keepalives (framer only). Off unless given. */
  keepalive?: KeepaliveOptions | boolean;
}

export interface WsParametersOptions extends CommonParametersOptions {
  /** wss: TLS under the WebSocket, PKI or PSK. */
  tls?: TlsOptions;
  /** Client: the request path (default `/`). Listener: accept only this path (default: any). */
  path?: string;
  subprotocols?: string[];
  /** Largest message accepted. Default 64 MiB. */
  maxMessageSize?: number;
  tcp?: TcpOptions;
  /** WebSocket ping keepalive. On by default (interval 10 s, timeout 30 s); `false` turns it off. */
  keepalive?: KeepaliveOptions | boolean;
}

export interface UdpParametersOptions extends CommonParametersOptions {
  /** Listener: most live flows at once; datagrams from further 4-tuples are dropped. Default 256. */
  flowLimit?: number;
  /** A flow with no traffic for this long is closed. Default 120 000; 0 = never. */
  idleTimeout?: number;
  /** Bytes reserved per datagram by a layer above (e.g. sealing); subtracted from maximumDatagramSize. */
  datagramOverhead?: number;
  /** Datagrams queued for a reader before further ones are dropped. Default 1024. */
  receiveQueueLimit?: number;
}
