/**
 * Client side of a connection attempt: constraints → resolution → Happy Eyeballs → TLS →
 * WebSocket → channel. One call is one attempt; the Connection's state machine decides
 * what a failure means (waiting or failed).
 */
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { loadWs } from './ws-module.js';
import { isPeerlinkError, PeerlinkError } from '../errors.js';
import type { Channel } from './channel.js';
import { literalAddress, raceConnect, resolveHost, sortForRace, type ResolvedAddress } from './dial.js';
import type { Endpoint, HostPortEndpoint } from './endpoint.js';
import { FramedChannel } from './framed-channel.js';
import { planInterfaces, type InterfacePlan } from './interface-policy.js';
import { toPeerlinkError, type TlsMode } from './net-errors.js';
import type { Parameters } from './parameters.js';
import { resolveService } from './service-resolve.js';
import { SocketChannel } from './socket-channel.js';
import { bindToDevice, tuneTcp } from './sockopt.js';
import { clientTlsOptions, verifyPkiPeer } from './tls-config.js';
import { tlsModule } from './tls-module.js';
import { UdpChannel } from './udp-channel.js';
import { WsChannel } from './ws-channel.js';

export interface Established {
  channel: Channel;
  pinnedTo: string | undefined;
  timings: { resolve?: number; connect?: number; handshake?: number };
  /** The host:port the connection reached. */
  remote: HostPortEndpoint;
  /** The attempt's `early` messages went out with the TLS handshake (see AttemptContext.early). */
  earlySent?: boolean;
}

export interface AttemptContext {
  signal: AbortSignal;
  onAttempt: () => void;
  /**
   * Messages to send first (Connection.sendEarly). With TLS-PSK and the framer they are written
   * the moment the handshake completes (the server has proved the key), in the same write as
   * the client's Finished, before any other work. Otherwise the caller sends them at ready.
   */
  early?: readonly Buffer[];
  /**
   * Called once TCP is connected, with a test of whether the server has sent anything yet (its
   * first TLS flight): connection-attempts.ts gives an answered handshake more time.
   */
  onConnected?: (answered: () => boolean) => void;
}

export const DEFAULT_CONNECTION_TIMEOUT = 30_000;

function tlsModeOf(p: Parameters): TlsMode {
  return p.tls ? (p.tls.psk ? 'psk' : 'pki') : undefined;
}

/** Applies the TCP options Node can set, and the ones only the sockopt helper can. */
export function applyTcpOptions(socket: Socket, p: Parameters): void {
  const t = p.tcp;
  socket.setNoDelay(t.noDelay !== false);
  if (t.enableKeepalive) {
    socket.setKeepAlive(true, t.keepaliveIdle ?? 7_200_000);
    const tuning: { keepaliveCount?: number; keepaliveInterval?: number } = {};
    if (t.keepaliveCount !== undefined) tuning.keepaliveCount = t.keepaliveCount;
    if (t.keepaliveInterval !== undefined) tuning.keepaliveInterval = t.keepaliveInterval;
    tuneTcp(socket, tuning);
  }
  if (t.connectionDropTime !== undefined) tuneTcp(socket, { userTimeout: t.connectionDropTime });
}

async function resolveEndpoint(endpoint: Endpoint, p: Parameters, signal: AbortSignal): Promise<{ host: string; port: number; addresses: ResolvedAddress[] }> {
  if (endpoint.kind === 'hostPort') {
    return { host: endpoint.host, port: endpoint.port, addresses: await resolveHost(endpoint.host, endpoint.interface) };
  }
  const r = await resolveService(endpoint, p, signal);
  return { host: r.host, port: r.port, addresses: r.addresses };
}

function abortable<T>(signal: AbortSignal, p: Promise<T>, onAbort: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort();
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const ab = (): void => {
      onAbort();
      reject(signal.reason);
    };
    signal.addEventListener('abort', ab, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', ab);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', ab);
        reject(e);
      },
    );
  });
}

/**
 * Early messages may ride with the handshake only where nothing is checked after it (PSK: the
 * handshake itself proves the key; PKI peers are verified after it, so their messages wait) and
 * the framing is ours (WebSocket frames need the upgrade first).
 */
function earlyWithHandshake(p: Parameters, early: readonly Buffer[] | undefined): early is readonly Buffer[] {
  return early !== undefined && early.length > 0 && p.tls?.psk !== undefined && p.application === 'framer' && p.framer !== undefined;
}

async function tlsHandshake(socket: Socket, p: Parameters, host: string, remote: HostPortEndpoint, signal: AbortSignal, early?: readonly Buffer[]): Promise<TLSSocket> {
  const opts = p.tls;
  if (!opts) throw new PeerlinkError('ERR_INTERNAL', 'no TLS options');
  const mode = tlsModeOf(p);
  // allowHalfOpen is honoured by tls.connect (TLS 1.2 and 1.3 both half-close) but missing from its types.
  const connectOptions: ConnectionOptions & { allowHalfOpen: boolean } = { ...clientTlsOptions(opts, host), socket, allowHalfOpen: true };
  const t = tlsModule().connect(connectOptions);
  const framer = p.framer;
  const earlyFrames = earlyWithHandshake(p, early) && framer ? Buffer.concat(early.flatMap((data) => framer.encode({ kind: 'message', data }))) : undefined;
  let secured = false;
  let settled = false;
  await abortable(
    signal,
    new Promise<void>((resolve, reject) => {
      const fail = (err: () => PeerlinkError): void => {
        // Built only while it matters: these listeners outlive the handshake, and an error's
        // stack costs more than the rest of a close.
        if (settled) return;
        settled = true;
        reject(err());
      };
      t.once('secureConnect', () => {
        secured = true;
        if (opts.pki) {
          // Checked before the Finished leaves (Node holds it until this callback and its
          // microtasks have returned): a server we refuse never sees a completed handshake,
          // and its listener reports the refusal instead of a connection that walks away.
          settled = true;
          t.removeAllListeners('error');
          resolve();
          return;
        }
        // PSK: the handshake has just proved the server's key and nothing else is checked.
        // Node writes the client's Finished only once this callback, and every microtask it
        // queues, has returned: whatever runs here delays the server's end of the handshake.
        // So the early messages are handed over here, to leave in the same write as the
        // Finished, and everything else waits for the next turn of the event loop, overlapping
        // the server's work instead of preceding it (about 0.2 ms of a loopback connect).
        if (earlyFrames) t.write(earlyFrames);
        setImmediate(() => {
          if (settled) return;
          settled = true;
          t.removeAllListeners('error');
          resolve();
        });
      });
      t.once('error', (err: NodeJS.ErrnoException) =>
        fail(() =>
          // A reset before the server said anything (as for a close, below) is no verdict on the key.
          !secured && socket.bytesRead === 0 && (err.code === 'ECONNRESET' || err.code === 'EPIPE')
            ? new PeerlinkError('ERR_CONNECTION_RESET', 'the peer reset the connection before answering the TLS handshake', { cause: err })
            : toPeerlinkError(err, { tls: mode, during: secured ? 'transfer' : 'handshake' }),
        ),
      );
      t.once('close', () =>
        fail(() =>
          secured
            ? new PeerlinkError('ERR_CONNECTION_RESET', 'the peer closed the connection right after the TLS handshake')
            : // Nothing at all came back: the peer gave up before answering (a listener whose
              // handshake timer fired on a starved host), which says nothing about the key. Treating
              // it as a wrong key held a live pair apart for the 30 s security retry.
              socket.bytesRead === 0
              ? new PeerlinkError('ERR_CONNECTION_RESET', 'the peer closed the connection before answering the TLS handshake')
              : // With a PSK a wrong key ends in an alert, not a bare close (the listener's
                // handshake timer firing on a starved host does this).
                new PeerlinkError(mode === 'psk' ? 'ERR_CONNECTION_RESET' : 'ERR_TLS_HANDSHAKE', 'the peer closed the connection during the TLS handshake'),
        ),
      );
    }),
    () => {
      // Our deadline passed: an RST, not a FIN. A server too busy to have accepted us yet then
      // finds the connection reset and makes no handshake for nobody (listener.ts onTcp); after
      // a FIN it still read our ClientHello and did its half of the key exchange. (Cancelled by
      // the app: a FIN, as before.)
      if (isPeerlinkError(signal.reason, 'ERR_CONNECTION_TIMEOUT') && !socket.destroyed) socket.resetAndDestroy();
      t.destroy();
    },
  );
  if (opts.pki) {
    const serverName = opts.pki.serverName;
    await verifyPkiPeer(t, opts.pki, { remote, role: 'client', ...(serverName !== undefined ? { serverName } : { serverName: host }) }).catch((err: unknown) => {
      t.destroy();
      throw err;
    });
  }
  return t;
}

async function wsHandshake(io: Socket, tcp: Socket, tlsSock: TLSSocket | undefined, p: Parameters, host: string, port: number, signal: AbortSignal): Promise<WsChannel> {
  const settings = p.ws ?? { subprotocols: [] };
  const path = settings.path ?? '/';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const url = `${tlsSock ? 'wss' : 'ws'}://${hostPart}:${port}${path.startsWith('/') ? path : `/${path}`}`;
  const { default: WebSocket } = await loadWs();
  const ws = new WebSocket(url, settings.subprotocols, {
    // The socket (TCP or TLS) is already connected and verified: ws only runs HTTP on it.
    createConnection: () => io,
    maxPayload: p.maxMessageSize,
    // WsChannel answers pings itself, coalesced (replies we owe).
    autoPong: false,
    perMessageDeflate: false,
    skipUTF8Validation: true,
  });
  const mode = tlsModeOf(p);
  return abortable(
    signal,
    new Promise<WsChannel>((resolve, reject) => {
      ws.once('open', () => {
        ws.removeAllListeners('error');
        ws.removeAllListeners('unexpected-response');
        // The channel takes ws's events from 'open' on: frames that came with the 101 response
        // are decoded on the next tick, before this promise settles, and a message (or close)
        // emitted with nobody listening would be lost.
        resolve(new WsChannel(ws, tcp, tlsSock, mode, p.keepalive));
      });
      ws.once('unexpected-response', (_req, res) => {
        reject(new PeerlinkError('ERR_PROTOCOL', `the server refused the WebSocket upgrade (HTTP ${res.statusCode ?? '?'})`));
        ws.terminate();
      });
      ws.once('error', (err: Error & { code?: string }) =>
        reject(
          err.code?.startsWith('HPE_')
            ? new PeerlinkError('ERR_PROTOCOL', `the server did not answer the WebSocket upgrade with HTTP (${err.message}): if it uses TLS, give its key or certificates (wss)`, { cause: err })
            : err.code?.startsWith('WS_ERR') || /Unexpected server response|Invalid Sec-WebSocket/.test(err.message) ? new PeerlinkError('ERR_PROTOCOL', `WebSocket handshake failed: ${err.message}`) : toPeerlinkError(err, { tls: mode, during: 'handshake' }),
        ),
      );
    }),
    () => ws.terminate(),
  );
}

async function establishUdp(addresses: ResolvedAddress[], port: number, p: Parameters, plan: InterfacePlan, ctx: AttemptContext): Promise<Established> {
  const a = sortForRace(addresses)[0];
  if (!a) throw new PeerlinkError('ERR_RESOLVE_FAILED', 'no addresses to send to');
  ctx.onAttempt();
  const sock = createSocket({ type: a.family === 6 ? 'udp6' : 'udp4' });
  const pin = plan.pinFor(a);
  const local = p.requiredLocalEndpoint;
  await abortable(
    ctx.signal,
    new Promise<void>((resolve, reject) => {
      sock.once('error', (err) => reject(toPeerlinkError(err, { what: 'UDP' })));
      sock.bind({ port: local?.port ?? 0, ...(local ? { address: local.host } : {}) }, () => {
        if (pin !== undefined) bindToDevice(sock, pin);
        sock.connect(port, a.zone !== undefined ? `${a.address}%${a.zone}` : a.address, () => {
          sock.removeAllListeners('error');
          resolve();
        });
      });
    }),
    () => sock.close(),
  );
  const la = sock.address();
  const ra = sock.remoteAddress();
  plan.check(la.address);
  const channel = new UdpChannel(sock, { address: la.address, port: la.port }, { address: ra.address, port: ra.port }, true, p.udp?.datagramOverhead ?? 0);
  return { channel, pinnedTo: pin, timings: {}, remote: { kind: 'hostPort', host: ra.address, port: ra.port } };
}

/** One attempt. Throws a PeerlinkError. */
export async function establish(endpoint: Endpoint, p: Parameters, ctx: AttemptContext): Promise<Established> {
  const t0 = performance.now();
  const plan = planInterfaces(p.constraints);
  // An address literal needs no resolution: no promise round (and abort listener) for it.
  const literal = endpoint.kind === 'hostPort' ? literalAddress(endpoint.host, endpoint.interface) : undefined;
  const resolved =
    endpoint.kind === 'hostPort' && literal !== undefined
      ? { host: endpoint.host, port: endpoint.port, addresses: [literal] }
      : await abortable(ctx.signal, resolveEndpoint(endpoint, p, ctx.signal), () => undefined);
  const { host, port } = resolved;
  const addresses = resolved.addresses.filter((a) => plan.usable(a));
  if (addresses.length === 0) {
    throw new PeerlinkError('ERR_NO_USABLE_INTERFACE', `none of ${resolved.addresses.map((a) => a.address).join(', ')} is reachable through an interface the parameters allow`);
  }
  const t1 = performance.now();
  if (p.transport === 'udp') {
    const e = await establishUdp(addresses, port, p, plan, ctx);
    e.timings.resolve = t1 - t0;
    return e;
  }
  const local = p.requiredLocalEndpoint;
  const race = await raceConnect(addresses, {
    port,
    pinFor: (a) => plan.pinFor(a),
    signal: ctx.signal,
    onAttempt: () => ctx.onAttempt(),
    ...(local ? { localAddress: local.host, localPort: local.port } : {}),
  });
  const tcp = race.socket;
  ctx.onConnected?.(() => tcp.bytesRead > 0);
  const t2 = performance.now();
  try {
    plan.check(tcp.localAddress ?? '');
    applyTcpOptions(tcp, p);
    const remote: HostPortEndpoint = { kind: 'hostPort', host: tcp.remoteAddress ?? race.address.address, port: tcp.remotePort ?? port, ...(race.address.zone !== undefined ? { interface: race.address.zone } : {}) };
    let io: Socket = tcp;
    let tlsSock: TLSSocket | undefined;
    if (p.tls) {
      tlsSock = await tlsHandshake(tcp, p, host, remote, ctx.signal, ctx.early);
      io = tlsSock;
    }
    let channel: Channel;
    const mode = tlsModeOf(p);
    if (p.application === 'ws') channel = await wsHandshake(io, tcp, tlsSock, p, host, port, ctx.signal);
    else if (p.application === 'framer' && p.framer) channel = new FramedChannel(io, tcp, mode, p.framer, p.maxMessageSize, p.keepalive);
    else channel = new SocketChannel(io, tcp, mode);
    const t3 = performance.now();
    const pinnedTo = race.pinned ? plan.pinFor(race.address) : undefined;
    return { channel, pinnedTo, remote, timings: { resolve: t1 - t0, connect: t2 - t1, ...(p.tls || p.application === 'ws' ? { handshake: t3 - t2 } : {}) }, ...(earlyWithHandshake(p, ctx.early) ? { earlySent: true } : {}) };
  } catch (err) {
    tcp.destroy();
    throw err;
  }
}
