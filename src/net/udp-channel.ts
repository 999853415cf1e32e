/**
 * UDP flows. A client flow owns a connected dgram socket; flows accepted by a listener share
 * the listener's socket and are fed by its 4-tuple demultiplexer (udp-flows.ts). Each
 * datagram is one message; nothing is fragmented: a send above maximumDatagramSize is
 * refused with ERR_DATAGRAM_TOO_LARGE and the connection carries on.
 */
import type { Socket as DgramSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { currentInterfaces } from './interface-policy.js';
import { interfaceForSource } from '../path/interfaces.js';
import { PeerlinkError } from '../errors.js';
import { RESOLVED, type Channel, type ChannelSink } from './channel.js';
import { toPeerlinkError } from './net-errors.js';

/** Bytes of IP + UDP header. */
const V4_HEADERS = 20 + 8;
const V6_HEADERS = 40 + 8;
/** Largest UDP payload the IP length fields allow. */
const V4_MAX = 65507;
const V6_MAX = 65527;
const SEND_QUEUE_HIGH_WATER = 256 * 1024;

function unmapped(a: string): string {
  const bare = a.split('%')[0] ?? a;
  return bare.startsWith('::ffff:') && isIPv4(bare.slice(7)) ? bare.slice(7) : bare;
}

function isLoopback(a: string): boolean {
  return a === '::1' || a.startsWith('127.');
}

/**
 * MTU of the interface a flow uses: the one owning `localAddress`, or, for a socket bound to
 * the unspecified address (a listener on `::`), the one whose subnet holds the remote address.
 * 1500 when unknown.
 */
export function mtuFor(localAddress: string, remoteAddress?: string): number {
  const local = unmapped(localAddress);
  const remote = remoteAddress !== undefined ? unmapped(remoteAddress) : undefined;
  const all = currentInterfaces();
  if (isLoopback(local) || (remote !== undefined && isLoopback(remote))) return all.find((i) => i.flags.loopback)?.mtu ?? 65536;
  const owner = all.find((i) => i.addresses.some((a) => a.address === local));
  if (owner) return owner.mtu;
  if (remote !== undefined) {
    const via = interfaceForSource(remoteAddress ?? remote, all);
    if (via) return via.mtu;
  }
  return 1500;
}

/** Largest UDP payload for a flow: MTU − IP/UDP headers − `overhead`, within UDP's own limit. */
export function maxDatagramFor(localAddress: string, overhead: number, remoteAddress?: string): number {
  return datagramLimit(mtuFor(localAddress, remoteAddress), isIPv4(unmapped(remoteAddress ?? localAddress)), overhead);
}

/** Largest UDP payload on a link of `mtu` bytes. */
function datagramLimit(mtu: number, v4: boolean, overhead: number): number {
  return Math.max(0, Math.min(mtu - (v4 ? V4_HEADERS : V6_HEADERS), v4 ? V4_MAX : V6_MAX) - overhead);
}

export class UdpChannel implements Channel {
  readonly kind = 'message' as const;
  readonly socket = undefined;
  readonly tlsSocket = undefined;
  private sink: ChannelSink | undefined;
  private isClosed = false;
  /** Set by the listener's flow table: called when this flow ends, to forget it. */
  onClose: (() => void) | undefined;
  /**
   * Set by the listener's flow table: told when a send starts and when the socket is done with
   * it, so the shared socket is not closed under a datagram still on its way out.
   */
  sendTracker: { begin(): void; end(): void } | undefined;
  /** Largest datagram send() accepts: the interface's MTU − IP/UDP headers − the overhead. */
  maximumDatagramSize: number;
  /** Sends the socket has not called back for yet; an owned socket closes only after them. */
  private sending = 0;
  private closeWhenSent = false;
  lastActivity = Date.now();

  constructor(
    private readonly dgram: DgramSocket,
    readonly local: { address: string; port: number },
    readonly remote: { address: string; port: number },
    /** True when this flow owns the socket (client); false for listener flows. */
    private readonly ownsSocket: boolean,
    /** Bytes a layer above reserves per datagram (UdpSettings.datagramOverhead). */
    private readonly overhead: number,
  ) {
    this.maximumDatagramSize = maxDatagramFor(local.address, overhead, remote.address);
    if (ownsSocket) {
      dgram.on('message', (msg) => this.deliver(msg));
      // ICMP errors (port unreachable) surface as socket errors on a connected UDP socket;
      // UDP is best-effort, so they are not fatal.
      dgram.on('error', () => {});
      dgram.on('close', () => this.closeFlow(undefined));
    }
  }

  /** The MTU of the flow's interface changed (the connection's path watch). */
  mtuChanged(mtu: number): void {
    this.maximumDatagramSize = datagramLimit(mtu, isIPv4(unmapped(this.remote.address)), this.overhead);
  }

  attach(sink: ChannelSink): void {
    this.sink = sink;
  }

  /** A datagram for this flow. */
  deliver(msg: Buffer): void {
    this.lastActivity = Date.now();
    this.sink?.message(msg);
  }

  send(chunks: Buffer | readonly Buffer[], final: boolean): Promise<void> {
    if (this.isClosed) return Promise.reject(new PeerlinkError('ERR_CLOSED', 'cannot send: the UDP flow is closed'));
    let size = 0;
    if (Buffer.isBuffer(chunks)) size = chunks.length;
    else for (const c of chunks) size += c.length;
    if (size > this.maximumDatagramSize) {
      return Promise.reject(new PeerlinkError('ERR_DATAGRAM_TOO_LARGE', `datagram of ${size} bytes exceeds maximumDatagramSize ${this.maximumDatagramSize}; split it (UDP messages are never fragmented)`));
    }
    this.lastActivity = Date.now();
    const data = Buffer.isBuffer(chunks) ? chunks : Buffer.concat(chunks as Buffer[], size);
    const wait = this.dgram.getSendQueueSize() > SEND_QUEUE_HIGH_WATER;
    // A listener flow's send goes out on a later tick (dgram looks the address up first), so a
    // final send or a cancel() right after it must not close the socket before it has gone.
    this.sending++;
    const tracker = this.sendTracker;
    tracker?.begin();
    const p = new Promise<void>((resolve, reject) => {
      let done = false;
      const cb = (err: Error | null): void => {
        if (done) return;
        done = true;
        this.sending--;
        tracker?.end();
        if (this.closeWhenSent && this.sending === 0) this.closeSocket();
        if (err) reject(toPeerlinkError(err, { what: 'UDP send' }));
        else resolve();
      };
      try {
        if (this.ownsSocket) this.dgram.send(data, cb);
        else this.dgram.send(data, this.remote.port, this.remote.address, cb);
      } catch (err) {
        // dgram throws (rather than calling back) on a closed socket: settle the counts here.
        cb(err as Error);
      }
    });
    if (final) queueMicrotask(() => this.end());
    if (!wait) {
      p.catch(() => {});
      return RESOLVED;
    }
    return p;
  }

  pause(): void {}
  resume(): void {}

  end(): void {
    this.closeFlow(undefined);
  }

  destroy(err?: PeerlinkError): void {
    this.closeFlow(err);
  }

  closeFlow(err: PeerlinkError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.ownsSocket) {
      if (this.sending === 0) this.closeSocket();
      else this.closeWhenSent = true;
    }
    this.onClose?.();
    if (!err) this.sink?.end();
    this.sink?.closed(err);
  }

  private closeSocket(): void {
    try {
      this.dgram.close();
    } catch {
      // already closed
    }
  }
}
