/**
 * The UDP side of a Listener: one bound socket, datagrams demultiplexed by the remote
 * address and port (the local side is fixed) into one flow per 4-tuple. A new 4-tuple
 * beyond `flowLimit` is dropped (and counted); a flow idle for `idleTimeout` is closed.
 * After stopAccepting() (the listener was cancelled) the flows already accepted go on, as
 * Network framework's connections outlive their listener; the socket closes with the last,
 * once its datagrams have been sent.
 */
import { createSocket, type Socket as DgramSocket, type RemoteInfo } from 'node:dgram';
import { toPeerlinkError } from './net-errors.js';
import type { UdpSettings } from './parameters.js';
import { UdpChannel } from './udp-channel.js';

export interface UdpFlowEvents {
  flow: (channel: UdpChannel, first: Buffer) => void;
  dropped: (remote: string) => void;
}

export class UdpFlowTable {
  readonly socket: DgramSocket;
  private readonly flows = new Map<string, UdpChannel>();
  private sweeper: NodeJS.Timeout | undefined;
  private accepting = true;
  private closed = false;
  /** Sends of any flow still on their way out of the socket (see UdpChannel.sendTracker). */
  private sending = 0;
  private readonly sendTracker = {
    begin: (): void => {
      this.sending++;
    },
    end: (): void => {
      this.sending--;
      this.closeIfDone();
    },
  };
  droppedFlows = 0;

  constructor(
    family: 4 | 6,
    private readonly settings: UdpSettings,
    private readonly handlers: UdpFlowEvents,
  ) {
    this.socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  bind(port: number, host: string): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(toPeerlinkError(err, { what: `UDP listen on ${host} port ${port}` }));
      this.socket.once('error', onError);
      this.socket.bind(port, host, () => {
        this.socket.removeListener('error', onError);
        // Errors after binding (ICMP reports) are about single datagrams, not the listener.
        this.socket.on('error', () => {});
        if (this.settings.idleTimeout > 0) {
          this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.min(this.settings.idleTimeout / 4, 5000)));
          this.sweeper.unref();
        }
        resolve(this.socket.address());
      });
    });
  }

  get size(): number {
    return this.flows.size;
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    const existing = this.flows.get(key);
    if (existing) {
      existing.deliver(msg);
      return;
    }
    if (!this.accepting) return; // the listener is cancelled: nothing to accept a new flow
    if (this.flows.size >= this.settings.flowLimit) {
      this.droppedFlows++;
      this.handlers.dropped(key);
      return;
    }
    const local = this.socket.address();
    const ch = new UdpChannel(this.socket, { address: local.address, port: local.port }, { address: rinfo.address, port: rinfo.port }, false, this.settings.datagramOverhead);
    ch.onClose = () => {
      this.flows.delete(key);
      this.closeIfDone();
    };
    ch.sendTracker = this.sendTracker;
    this.flows.set(key, ch);
    this.handlers.flow(ch, msg);
  }

  private sweep(): void {
    const limit = Date.now() - this.settings.idleTimeout;
    for (const f of [...this.flows.values()]) if (f.lastActivity < limit) f.closeFlow(undefined);
  }

  /** No new flows from now on; the socket stays open for the accepted ones and closes with the last. */
  stopAccepting(): void {
    this.accepting = false;
    this.closeIfDone();
  }

  /** After stopAccepting(): closes the socket once no flow is left and nothing is being sent. */
  private closeIfDone(): void {
    if (!this.accepting && this.flows.size === 0 && this.sending === 0) this.close();
  }

  /** Closes every flow and the socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.accepting = false;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const f of [...this.flows.values()]) f.closeFlow(undefined);
    try {
      this.socket.close();
    } catch {
      // already closed
    }
  }
}
