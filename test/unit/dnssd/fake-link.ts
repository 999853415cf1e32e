/**
 * An in-memory link for engine tests in fake time: every host's multicast reaches every
 * host on the link (itself included, like IP_MULTICAST_LOOP), after 1 ms, through the real
 * decoder. Unicast reaches the one host owning the address.
 */
import { EventEmitter } from 'node:events';
import type { NetworkInterface } from '../../../src/path/interfaces.js';
import { decodePacket } from '../../../src/dnssd/codec/decode.js';
import type { DnsPacket } from '../../../src/dnssd/codec/types.js';
import type { FakeClock } from '../../../src/dnssd/clock.js';
import type { PacketNetwork, ReceivedPacket } from '../../../src/dnssd/transport.js';

export function fakeInterface(i: number): NetworkInterface {
  return {
    name: 'eth0',
    index: 2,
    type: 'wiredEthernet',
    flags: { up: true, running: true, broadcast: true, multicast: true, loopback: false, pointToPoint: false },
    mtu: 1500,
    addresses: [
      { family: 'IPv4', address: `10.9.0.${i}`, prefixLength: 24, netmask: '255.255.255.0', scope: 'global' },
      { family: 'IPv6', address: `fe80::${i}`, prefixLength: 64, netmask: 'ffff:ffff:ffff:ffff::', scope: 'link', scopeId: 2 },
    ],
  };
}

export interface Sent {
  from: string;
  at: number;
  data: Buffer;
  packet: DnsPacket;
  /** The family of the socket it went out on (multicast; unicast counts as IPv4 here). */
  family?: 'IPv4' | 'IPv6';
  to?: { address: string; port: number };
}

export class FakeLink {
  readonly hosts: FakeHost[] = [];
  readonly log: Sent[] = [];
  /** When set, drops (returns true) or alters packets in flight. */
  filter: ((s: Sent) => boolean) | undefined;
  /** When set, drops (returns true) a packet at one receiver only (a full socket buffer there). */
  dropAt: ((s: Sent, to: FakeHost) => boolean) | undefined;
  /** When set, extra ms before a packet reaches one receiver (a starved process reading late). */
  delayAt: ((s: Sent, to: FakeHost) => number) | undefined;

  /**
   * With `v6Sources`, a packet sent over IPv6 arrives from the sender's IPv6 (link-local)
   * address, as on a real link, instead of its IPv4 address: what ties a host's records of
   * both families together (service-instance.ts) is then exercised.
   */
  constructor(readonly clock: FakeClock, readonly opts: { v6Sources?: boolean } = {}) {}

  /**
   * When set, each receiver gets a packet this many ms later than the 1 ms of the link (a
   * loaded host that reads its socket late): per receiver, so hosts see packets in different
   * orders, as in the scale lab.
   */
  lag: ((to: FakeHost) => number) | undefined;

  /** A host on the link; `families` are the multicast sockets it has (default IPv4 only). */
  host(i: number, families: ReadonlyArray<'IPv4' | 'IPv6'> = ['IPv4']): FakeHost {
    const h = new FakeHost(this, fakeInterface(i), families);
    this.hosts.push(h);
    return h;
  }

  deliver(from: FakeHost, data: Buffer, to?: { address: string; port: number }, srcPort = 5353, family: 'IPv4' | 'IPv6' = 'IPv4'): void {
    const packet = decodePacket(data);
    const sent: Sent = { from: from.address, at: this.clock.now(), data, packet, family, ...(to ? { to } : {}) };
    this.log.push(sent);
    if (this.filter?.(sent)) return;
    const source = this.opts.v6Sources && family === 'IPv6' && !to ? from.address6 : from.address;
    const lag = this.lag;
    if (lag !== undefined) {
      for (const h of this.hosts) {
        if (to && h.address !== to.address) continue;
        if (!h.families.includes(family)) continue;
        this.clock.setTimeout(() => {
          if (!this.dropAt?.(sent, h)) h.receive(data, source, srcPort, family);
        }, 1 + lag(h));
      }
      return;
    }
    this.clock.setTimeout(() => {
      for (const h of this.hosts) {
        if (to && h.address !== to.address) continue;
        if (!h.families.includes(family)) continue;
        if (this.dropAt?.(sent, h)) continue;
        const late = this.delayAt?.(sent, h) ?? 0;
        if (late > 0) this.clock.setTimeout(() => h.receive(data, source, srcPort, family), late);
        else h.receive(data, source, srcPort, family);
      }
    }, 1);
  }

  /** Injects raw bytes as if sent by `address` (for fuzzing and legacy queries). */
  inject(data: Buffer, address: string, port = 5353, family: 'IPv4' | 'IPv6' = 'IPv4'): void {
    for (const h of this.hosts) if (h.families.includes(family)) h.receive(data, address, port, family);
  }
}

export class FakeHost extends EventEmitter implements PacketNetwork {
  readonly interfaces: NetworkInterface[];
  readonly unicastOut: Sent[] = [];
  malformed = 0;

  constructor(
    private readonly link: FakeLink,
    iface: NetworkInterface,
    readonly families: ReadonlyArray<'IPv4' | 'IPv6'> = ['IPv4'],
  ) {
    super();
    this.interfaces = [iface];
  }

  get address(): string {
    return (this.interfaces[0] as NetworkInterface).addresses[0]?.address as string;
  }

  get address6(): string {
    return (this.interfaces[0] as NetworkInterface).addresses[1]?.address as string;
  }

  receive(data: Buffer, address: string, port: number, family: 'IPv4' | 'IPv6' = 'IPv4'): void {
    let packet: DnsPacket;
    try {
      packet = decodePacket(data);
    } catch {
      this.malformed++;
      return;
    }
    const p: ReceivedPacket = { packet, iface: this.interfaces[0] as NetworkInterface, address, port, family, local: address === this.address || address === this.address6 };
    this.emit('packet', p);
  }

  sendMulticast(_iface: string, data: Buffer, family?: 'IPv4' | 'IPv6'): number {
    let n = 0;
    for (const f of this.families) {
      if (family !== undefined && f !== family) continue;
      this.link.deliver(this, data, undefined, 5353, f);
      n++;
    }
    return n;
  }

  sendUnicast(_iface: string, data: Buffer, address: string, port: number): void {
    this.unicastOut.push({ from: this.address, at: this.link.clock.now(), data, packet: decodePacket(data), to: { address, port } });
    if (port === 5353) this.link.deliver(this, data, { address, port });
  }
}
