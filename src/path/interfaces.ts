/**
 * Network interfaces with functional type, flags and addresses.
 *
 * On Linux the facts come from /sys/class/net/<if>/{ifindex,type,flags,mtu,uevent,
 * wireless,phy80211,address} together with os.networkInterfaces() for the addresses
 * (which hides interfaces that are down and has no flags or type). Elsewhere only
 * os.networkInterfaces() is available: interfaces it lists are taken as up, running and
 * multicast-capable, loopback is recognised by `internal`, and the type is guessed from
 * the name (documented in docs/path.md).
 */
import { networkInterfaces } from 'node:os';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { PeerlinkError } from '../errors.js';

export type InterfaceType = 'wifi' | 'wiredEthernet' | 'cellular' | 'loopback' | 'other';

export interface InterfaceFlags {
  up: boolean;
  running: boolean;
  broadcast: boolean;
  multicast: boolean;
  loopback: boolean;
  pointToPoint: boolean;
}

export type AddressScope = 'host' | 'link' | 'site' | 'global';

export interface InterfaceAddress {
  family: 'IPv4' | 'IPv6';
  address: string;
  prefixLength: number;
  netmask: string;
  scope: AddressScope;
  /** IPv6 scope id (the interface index) for link-local addresses. */
  scopeId?: number;
}

export interface NetworkInterface {
  name: string;
  index: number;
  type: InterfaceType;
  flags: InterfaceFlags;
  mtu: number;
  mac?: string;
  addresses: InterfaceAddress[];
}

// Linux IFF_* bits (include/uapi/linux/if.h)
const IFF_UP = 0x1;
const IFF_BROADCAST = 0x2;
const IFF_LOOPBACK = 0x8;
const IFF_POINTOPOINT = 0x10;
const IFF_RUNNING = 0x40;
const IFF_MULTICAST = 0x1000;

// ARPHRD_* (include/uapi/linux/if_arp.h)
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;
const ARPHRD_RAWIP = 519;
const ARPHRD_NONE = 0xfffe;

const SYS_NET = '/sys/class/net';

function readSys(name: string, file: string): string | undefined {
  try {
    return readFileSync(`${SYS_NET}/${name}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function prefixFromNetmask(netmask: string): number {
  if (isIPv4(netmask)) {
    return netmask.split('.').reduce((n, part) => n + popcount(Number(part)), 0);
  }
  return expandIPv6(netmask)
    .map((h) => popcount(h))
    .reduce((a, b) => a + b, 0);
}

function popcount(n: number): number {
  let c = 0;
  while (n) {
    c += n & 1;
    n >>>= 1;
  }
  return c;
}

/** Expands an IPv6 address (without zone) to its eight 16-bit groups. */
export function expandIPv6(addr: string): number[] {
  const zoneless = addr.split('%')[0] ?? addr;
  let head = zoneless;
  let tailV4: number[] = [];
  const lastColon = zoneless.lastIndexOf(':');
  const maybeV4 = zoneless.slice(lastColon + 1);
  if (isIPv4(maybeV4)) {
    const b = maybeV4.split('.').map(Number) as [number, number, number, number];
    tailV4 = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
    head = zoneless.slice(0, lastColon + 1) + '0';
  }
  const [l, r] = head.includes('::') ? head.split('::') : [head, undefined];
  const left = l ? l.split(':').map((h) => parseInt(h, 16)) : [];
  const right = r !== undefined && r !== '' ? r.split(':').map((h) => parseInt(h, 16)) : [];
  if (tailV4.length) right.splice(right.length - 1, 1);
  const groupsNeeded = 8 - tailV4.length;
  const fill = r === undefined ? [] : new Array(groupsNeeded - left.length - right.length).fill(0);
  return [...left, ...fill, ...right, ...tailV4].slice(0, 8);
}

export function ipv6Scope(addr: string): AddressScope {
  const g = expandIPv6(addr);
  const first = g[0] ?? 0;
  if (g.every((x, i) => (i < 7 ? x === 0 : x === 1))) return 'host';
  if ((first & 0xffc0) === 0xfe80) return 'link';
  if ((first & 0xffc0) === 0xfec0) return 'site';
  return 'global';
}

function ipv4Scope(addr: string): AddressScope {
  if (addr.startsWith('127.')) return 'host';
  if (addr.startsWith('169.254.')) return 'link';
  return 'global';
}

function typeFromSys(name: string, arphrd: number | undefined, loopback: boolean): InterfaceType {
  if (loopback || arphrd === ARPHRD_LOOPBACK) return 'loopback';
  const uevent = readSys(name, 'uevent') ?? '';
  const devtype = /^DEVTYPE=(.*)$/m.exec(uevent)?.[1];
  if (devtype === 'wlan' || existsSync(`${SYS_NET}/${name}/wireless`) || existsSync(`${SYS_NET}/${name}/phy80211`)) return 'wifi';
  if (devtype === 'wwan' || arphrd === ARPHRD_RAWIP) return 'cellular';
  if (arphrd === ARPHRD_ETHER && (devtype === undefined || devtype === 'gadget')) return 'wiredEthernet';
  if (arphrd === ARPHRD_NONE) return 'other';
  return 'other';
}

/** Type guess from a name, for platforms without /sys/class/net. */
function typeFromName(name: string, internal: boolean): InterfaceType {
  if (internal || /^lo\d*$/.test(name)) return 'loopback';
  if (/^(wl|wlan|wifi|ath|ra)\d*/i.test(name) || /wi-?fi|wireless/i.test(name)) return 'wifi';
  if (/^(pdp_ip|rmnet|wwan|ccmni)/i.test(name)) return 'cellular';
  if (/^(en|eth|em|eno|ens|enp)/i.test(name) || /ethernet/i.test(name)) return 'wiredEthernet';
  return 'other';
}

function toAddresses(infos: ReturnType<typeof networkInterfaces>[string]): InterfaceAddress[] {
  const out: InterfaceAddress[] = [];
  for (const a of infos ?? []) {
    const family = a.family === 'IPv4' ? 'IPv4' : 'IPv6';
    const addr: InterfaceAddress = {
      family,
      address: a.address,
      netmask: a.netmask,
      prefixLength: prefixFromNetmask(a.netmask),
      scope: family === 'IPv4' ? ipv4Scope(a.address) : ipv6Scope(a.address),
    };
    if (family === 'IPv6' && 'scopeid' in a && a.scopeid) addr.scopeId = a.scopeid;
    out.push(addr);
  }
  return out;
}

/** Lists every interface of this host (network namespace), up or down. */
export function listInterfaces(): NetworkInterface[] {
  const os = networkInterfaces();
  let sysNames: string[];
  try {
    sysNames = readdirSync(SYS_NET);
  } catch {
    sysNames = [];
  }
  const result: NetworkInterface[] = [];
  if (sysNames.length > 0) {
    for (const name of sysNames) {
      const flagsRaw = parseInt(readSys(name, 'flags') ?? '0', 16);
      const arphrd = Number(readSys(name, 'type') ?? NaN);
      const loopback = (flagsRaw & IFF_LOOPBACK) !== 0;
      const operstate = readSys(name, 'operstate');
      const carrier = readSys(name, 'carrier');
      const flags: InterfaceFlags = {
        up: (flagsRaw & IFF_UP) !== 0,
        // IFF_RUNNING is not exported in sysfs flags; operstate/carrier say it.
        running: (flagsRaw & IFF_RUNNING) !== 0 || operstate === 'up' || (operstate === 'unknown' && carrier === '1'),
        broadcast: (flagsRaw & IFF_BROADCAST) !== 0,
        multicast: (flagsRaw & IFF_MULTICAST) !== 0,
        loopback,
        pointToPoint: (flagsRaw & IFF_POINTOPOINT) !== 0,
      };
      const mac = readSys(name, 'address');
      const iface: NetworkInterface = {
        name,
        index: Number(readSys(name, 'ifindex') ?? 0),
        type: typeFromSys(name, Number.isNaN(arphrd) ? undefined : arphrd, loopback),
        flags,
        mtu: Number(readSys(name, 'mtu') ?? 1500),
        addresses: toAddresses(os[name]),
      };
      if (mac && mac !== '00:00:00:00:00:00') iface.mac = mac;
      result.push(iface);
    }
  } else {
    let index = 0;
    for (const [name, infos] of Object.entries(os)) {
      index++;
      const internal = (infos ?? []).some((a) => a.internal);
      const scoped = (infos ?? []).find((a) => a.family === 'IPv6' && 'scopeid' in a && a.scopeid);
      const iface: NetworkInterface = {
        name,
        index: scoped && 'scopeid' in scoped && scoped.scopeid ? scoped.scopeid : index,
        type: typeFromName(name, internal),
        flags: { up: true, running: true, broadcast: !internal, multicast: true, loopback: internal, pointToPoint: false },
        mtu: 1500,
        addresses: toAddresses(infos),
      };
      const mac = infos?.[0]?.mac;
      if (mac && mac !== '00:00:00:00:00:00') iface.mac = mac;
      result.push(iface);
    }
  }
  return result.sort((a, b) => a.index - b.index);
}

/**
 * The interfaces to use for discovery / connections.
 * Default (no names): every up, multicast-capable, non-loopback interface. `lo` is used only
 * when named. An unknown name throws ERR_UNKNOWN_INTERFACE.
 */
export function selectInterfaces(names?: readonly string[], all: NetworkInterface[] = listInterfaces()): NetworkInterface[] {
  if (names && names.length > 0) {
    return names.map((n) => {
      const found = all.find((i) => i.name === n);
      if (!found) {
        throw new PeerlinkError('ERR_UNKNOWN_INTERFACE', `unknown interface "${n}" (known: ${all.map((i) => i.name).join(', ') || 'none'})`);
      }
      return found;
    });
  }
  return all.filter((i) => i.flags.up && i.flags.multicast && !i.flags.loopback);
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, p) => ((n << 8) | Number(p)) >>> 0, 0);
}

/** True when `address` lies in the subnet of `ifaceAddr`. */
export function inSubnet(address: string, ifaceAddr: InterfaceAddress): boolean {
  const bare = address.split('%')[0] ?? address;
  if (ifaceAddr.family === 'IPv4') {
    const v4 = bare.startsWith('::ffff:') ? bare.slice(7) : bare;
    if (!isIPv4(v4)) return false;
    const bits = ifaceAddr.prefixLength;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return (ipv4ToInt(v4) & mask) === (ipv4ToInt(ifaceAddr.address) & mask);
  }
  if (isIPv4(bare)) return false;
  const a = expandIPv6(bare);
  const b = expandIPv6(ifaceAddr.address);
  let bits = ifaceAddr.prefixLength;
  for (let i = 0; i < 8 && bits > 0; i++) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((a[i] ?? 0) & mask) !== ((b[i] ?? 0) & mask)) return false;
    bits -= take;
  }
  return true;
}

/**
 * The interface a packet from `source` most likely arrived on: the one with an address
 * whose subnet contains it (longest prefix wins). IPv6 link-local sources carry their
 * zone (`fe80::1%eth0`) when the socket reports it; the zone decides when present.
 */
export function interfaceForSource(source: string, candidates: readonly NetworkInterface[]): NetworkInterface | undefined {
  const zone = source.includes('%') ? source.slice(source.indexOf('%') + 1) : undefined;
  if (zone) {
    // The zone names the arrival interface outright. When it is none of the candidates the
    // packet came in elsewhere: every link has the same fe80::/64, so the subnet match below
    // would wrongly claim it for the first candidate (a wildcard socket sees groups its
    // siblings, or other processes, joined on other links: IP_MULTICAST_ALL).
    return candidates.find((i) => i.name === zone || String(i.index) === zone);
  }
  let best: NetworkInterface | undefined;
  let bestLen = -1;
  for (const iface of candidates) {
    for (const addr of iface.addresses) {
      if (addr.address === source.split('%')[0]) return iface;
      if (inSubnet(source, addr) && addr.prefixLength > bestLen) {
        best = iface;
        bestLen = addr.prefixLength;
      }
    }
  }
  return best;
}
