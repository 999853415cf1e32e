/**
 * mDNS sockets: one IPv4 and one IPv6 UDP socket per selected interface, all on port
 * 5353 with address reuse (so Avahi and other peerlink processes share the port), each
 * joined to the group on its own interface and sending through it (setMulticastInterface:
 * never rely on a route for 224.0.0.0/4). Multicast loopback stays on so that processes on
 * one host see each other.
 *
 * Node does not report the interface a datagram arrived on, and a socket bound to the
 * wildcard address sees groups joined by its sibling sockets (IP_MULTICAST_ALL), so each
 * packet is attributed by its source address (interfaceForSource, as ciao does). The same
 * match is the RFC 6762 §11 source check: a packet whose source is not on the link is
 * dropped. Decoding never throws out of the handler; bad packets are counted and dropped.
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { inSubnet, interfaceForSource, type NetworkInterface } from '../path/interfaces.js';
import { decodePacket } from './codec/decode.js';
import type { DnsPacket } from './codec/types.js';
import { droppedChannel, log } from './diagnostics.js';

export const MDNS_PORT = 5353;
export const MDNS_IPV4 = '224.0.0.251';
export const MDNS_IPV6 = 'ff02::fb';
/**
 * Receive buffer asked for each mDNS socket (SO_RCVBUF; Linux caps it at net.core.rmem_max and
 * doubles it). Every host on the link receives every packet: when 100 peers start together on
 * a busy machine, a process the scheduler leaves waiting for a second overflows the default
 * (208 KiB, ~100–250 datagrams) and loses the probes and announcements it needs to choose a
 * unique host name — 90 % of datagrams were dropped so in the scale lab. Memory is used only
 * while datagrams wait.
 */
export const MDNS_RECV_BUFFER = 1024 * 1024;

export interface ReceivedPacket {
  packet: DnsPacket;
  /** The interface the packet is attributed to. */
  iface: NetworkInterface;
  /** Source address (IPv6 without zone) and port. */
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
  /** True when the source is one of this host's addresses (another process, or us). */
  local: boolean;
}

export interface TransportStats {
  received: number;
  malformed: number;
  /** Dropped by the source check (not from this link). */
  offLink: number;
  sent: number;
  sendErrors: number;
}

/** What the responder and querier need from the network; tests supply a fake. */
export interface PacketNetwork {
  readonly interfaces: readonly NetworkInterface[];
  on(event: 'packet', listener: (p: ReceivedPacket) => void): this;
  off(event: 'packet', listener: (p: ReceivedPacket) => void): this;
  /**
   * Multicasts on one interface, over every family it has a socket for (or only `family`);
   * returns how many sockets it went out on (0: none for that interface and family).
   */
  sendMulticast(iface: string, data: Buffer, family?: 'IPv4' | 'IPv6'): number;
  sendUnicast(iface: string, data: Buffer, address: string, port: number): void;
}

interface Sock {
  iface: NetworkInterface;
  family: 'IPv4' | 'IPv6';
  socket: Socket;
}

/**
 * Whether a packet from `address` belongs to `iface` among `all` (path's interfaceForSource:
 * the zone Node reports for IPv6 link-local sources, `fe80::1%eth0`, decides those; otherwise
 * the interface whose subnet holds the source most specifically). No match means the source
 * is not on any of our links: RFC 6762 §11 says drop it.
 */
export function belongsTo(iface: NetworkInterface, address: string, zone: string | undefined, all: readonly NetworkInterface[]): boolean {
  return interfaceForSource(zone ? `${address}%${zone}` : address, all)?.name === iface.name;
}

export class MdnsTransport extends EventEmitter implements PacketNetwork {
  readonly stats: TransportStats = { received: 0, malformed: 0, offLink: 0, sent: 0, sendErrors: 0 };
  private socks: Sock[] = [];
  private closed = false;
  private inFlight = 0;
  private drained: (() => void)[] = [];

  private readonly ifaces: NetworkInterface[];

  constructor(interfaces: readonly NetworkInterface[]) {
    super();
    this.ifaces = [...interfaces];
  }

  /** The interfaces in use (the list changes as interfaces are adopted or dropped). */
  get interfaces(): readonly NetworkInterface[] {
    return this.ifaces;
  }

  /** Starts using an interface that appeared after start. */
  async addInterface(iface: NetworkInterface): Promise<void> {
    if (this.closed || this.ifaces.some((i) => i.name === iface.name)) return;
    this.ifaces.push(iface);
    await this.refreshInterface(iface);
  }

  /** Stops using an interface that went away: closes its sockets. */
  removeInterface(name: string): void {
    const at = this.ifaces.findIndex((i) => i.name === name);
    if (at >= 0) this.ifaces.splice(at, 1);
    for (const s of this.socks.filter((x) => x.iface.name === name)) {
      this.socks.splice(this.socks.indexOf(s), 1);
      try {
        s.socket.close();
      } catch {
        // already closed
      }
    }
  }

  /** Opens the sockets. Resolves when every socket that could be set up is bound. */
  async start(): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const iface of this.interfaces) {
      const v4 = iface.addresses.find((a) => a.family === 'IPv4');
      if (v4) jobs.push(this.open(iface, 'IPv4', v4.address));
      const v6 = iface.addresses.find((a) => a.family === 'IPv6');
      if (v6) jobs.push(this.open(iface, 'IPv6', `::%${iface.name}`));
    }
    await Promise.all(jobs);
  }

  /** The families that have a working socket on an interface. */
  families(iface: string): ('IPv4' | 'IPv6')[] {
    return this.socks.filter((s) => s.iface.name === iface).map((s) => s.family);
  }

  private open(iface: NetworkInterface, family: 'IPv4' | 'IPv6', ifaceAddr: string): Promise<void> {
    const socket = createSocket(family === 'IPv4' ? { type: 'udp4', reuseAddr: true } : { type: 'udp6', reuseAddr: true, ipv6Only: true });
    return new Promise<void>((resolve) => {
      const fail = (err: Error): void => {
        this.emit('warning', new Error(`mDNS ${family} socket on ${iface.name} unavailable: ${err.message}`));
        try {
          socket.close();
        } catch {
          // already closed
        }
        resolve();
      };
      socket.once('error', fail);
      socket.bind({ port: MDNS_PORT, address: family === 'IPv4' ? '0.0.0.0' : '::', exclusive: false }, () => {
        try {
          socket.addMembership(family === 'IPv4' ? MDNS_IPV4 : MDNS_IPV6, ifaceAddr);
          socket.setMulticastInterface(ifaceAddr);
          socket.setMulticastTTL(255);
          socket.setTTL(255);
          socket.setMulticastLoopback(true);
        } catch (err) {
          fail(err as Error);
          return;
        }
        try {
          socket.setRecvBufferSize(MDNS_RECV_BUFFER);
        } catch {
          // the default buffer still works
        }
        socket.off('error', fail);
        socket.on('error', (err) => this.emit('warning', err));
        socket.on('message', (msg, rinfo) => this.onMessage(iface, family, msg, rinfo));
        if (this.closed) socket.close();
        else this.socks.push({ iface, family, socket });
        resolve();
      });
    });
  }

  private onMessage(iface: NetworkInterface, family: 'IPv4' | 'IPv6', msg: Buffer, rinfo: RemoteInfo): void {
    try {
      const pct = rinfo.address.indexOf('%');
      const address = pct < 0 ? rinfo.address : rinfo.address.slice(0, pct);
      const zone = pct < 0 ? undefined : rinfo.address.slice(pct + 1);
      if (!belongsTo(iface, address, zone, this.interfaces)) {
        this.stats.offLink++;
        if (droppedChannel.hasSubscribers) droppedChannel.publish({ reason: 'off-link', iface: iface.name, address, port: rinfo.port });
        return;
      }
      this.stats.received++;
      let packet: DnsPacket;
      try {
        packet = decodePacket(msg);
      } catch (err) {
        this.stats.malformed++;
        if (droppedChannel.hasSubscribers) droppedChannel.publish({ reason: 'malformed', iface: iface.name, address, port: rinfo.port });
        log('dropped a malformed packet from %s on %s: %s', rinfo.address, iface.name, (err as Error).message);
        return;
      }
      const local = this.interfaces.some((i) => i.addresses.some((a) => a.address === address));
      this.emit('packet', { packet, iface, address, port: rinfo.port, family, local } satisfies ReceivedPacket);
    } catch (err) {
      // a bug in a packet listener must not take the socket (or the process) down
      this.stats.malformed++;
      this.emit('warning', err);
    }
  }

  /**
   * The interface's addresses changed (the caller updated `iface.addresses`): point the
   * sockets at the new addresses, and open a socket for a family that just appeared.
   */
  async refreshInterface(iface: NetworkInterface): Promise<void> {
    if (this.closed) return;
    const v4 = iface.addresses.find((a) => a.family === 'IPv4');
    const v6 = iface.addresses.find((a) => a.family === 'IPv6');
    const has = (family: 'IPv4' | 'IPv6'): Sock | undefined => this.socks.find((x) => x.iface.name === iface.name && x.family === family);
    const s4 = has('IPv4');
    if (s4 && v4) {
      try {
        s4.socket.setMulticastInterface(v4.address);
        s4.socket.addMembership(MDNS_IPV4, v4.address);
      } catch {
        // already a member through this interface: the membership follows the interface
      }
    }
    const jobs: Promise<void>[] = [];
    if (!s4 && v4) jobs.push(this.open(iface, 'IPv4', v4.address));
    if (!has('IPv6') && v6) jobs.push(this.open(iface, 'IPv6', `::%${iface.name}`));
    await Promise.all(jobs);
  }

  sendMulticast(ifaceName: string, data: Buffer, family?: 'IPv4' | 'IPv6'): number {
    let n = 0;
    for (const s of this.socks) {
      if (s.iface.name !== ifaceName || (family !== undefined && s.family !== family)) continue;
      this.sendOn(s, data, s.family === 'IPv4' ? MDNS_IPV4 : `${MDNS_IPV6}%${ifaceName}`, MDNS_PORT);
      n++;
    }
    return n;
  }

  sendUnicast(ifaceName: string, data: Buffer, address: string, port: number): void {
    const v6 = address.includes(':');
    const s = this.socks.find((x) => x.iface.name === ifaceName && x.family === (v6 ? 'IPv6' : 'IPv4'));
    if (!s) return;
    const dest = v6 && address.toLowerCase().startsWith('fe80') && !address.includes('%') ? `${address}%${ifaceName}` : address;
    this.sendOn(s, data, dest, port);
  }

  private sendOn(s: Sock, data: Buffer, address: string, port: number): void {
    if (this.closed) return;
    this.stats.sent++;
    this.inFlight++;
    try {
      s.socket.send(data, port, address, (err) => {
        if (--this.inFlight === 0) for (const d of this.drained.splice(0)) d();
        if (err) {
          this.stats.sendErrors++;
          this.emit('warning', err);
        }
      });
    } catch (err) {
      this.inFlight--;
      this.stats.sendErrors++;
      this.emit('warning', err);
    }
  }

  /** Closes every socket after pending sends have been handed to the kernel. */
  async close(): Promise<void> {
    if (this.closed) return;
    // goodbyes are sent just before close: let them reach the kernel first
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    this.closed = true;
    const socks = this.socks;
    this.socks = [];
    await Promise.all(socks.map((s) => new Promise<void>((resolve) => {
      try {
        s.socket.close(() => resolve());
      } catch {
        resolve();
      }
    })));
  }
}

/**
 * Whether an address from an answer heard on `iface` is on that link: in one of its subnets,
 * or IPv6 link-local scoped to it (`fe80::1%eth0`). Anything else named in an mDNS answer may
 * be a stranger pointing us elsewhere (a reflector): not for dialling (RFC 6762 §11 keeps
 * mDNS to the link).
 */
export function onLink(address: string, iface: NetworkInterface): boolean {
  const pct = address.indexOf('%');
  const bare = pct < 0 ? address : address.slice(0, pct);
  if (/^fe[89ab]/i.test(bare)) return pct >= 0 && address.slice(pct + 1) === iface.name;
  return iface.addresses.some((a) => inSubnet(bare, a));
}
