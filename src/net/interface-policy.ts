/**
 * Applies Parameters' interface constraints to the host's interfaces, picks the interface
 * to pin a socket to, and describes the interface a connection ended up on.
 */
import { interfaceForSource, listInterfaces, type NetworkInterface } from '../path/interfaces.js';
import { interfacesSatisfying } from '../path/constraints.js';
import { PeerlinkError } from '../errors.js';
import type { InterfaceConstraints } from './options.js';
import type { PathInterface } from './path.js';
import type { ResolvedAddress } from './dial.js';
import { isLinkLocal6 } from './dial.js';

/**
 * Reading every interface from /sys costs about a millisecond; connections are set up far more
 * often than interfaces change, so a reading is reused for a short while.
 */
const CACHE_MS = 1000;
let cached: { at: number; list: NetworkInterface[] } | undefined;

export function currentInterfaces(): NetworkInterface[] {
  const now = Date.now();
  if (!cached || now - cached.at > CACHE_MS) cached = { at: now, list: listInterfaces() };
  return cached.list;
}

export function hasInterfaceConstraints(c: InterfaceConstraints): boolean {
  return (
    c.requiredInterface !== undefined ||
    c.requiredInterfaceType !== undefined ||
    (c.prohibitedInterfaces?.length ?? 0) > 0 ||
    (c.prohibitedInterfaceTypes?.length ?? 0) > 0 ||
    c.prohibitExpensivePaths === true ||
    c.prohibitConstrainedPaths === true
  );
}

/** Interfaces that are up and satisfy the constraints (Network framework's semantics). */
export function satisfyingInterfaces(c: InterfaceConstraints, all: readonly NetworkInterface[] = currentInterfaces()): NetworkInterface[] {
  return interfacesSatisfying(c, all.filter((i) => i.flags.up));
}

export interface InterfacePlan {
  /** undefined = no constraints: any interface, no pinning. */
  allowed: NetworkInterface[] | undefined;
  /** False when no allowed interface can reach the address (loopback needs lo; zones must be allowed). */
  usable(a: ResolvedAddress): boolean;
  /** The interface to pin an attempt to this address to, if any. */
  pinFor(a: ResolvedAddress): string | undefined;
  /** Throws ERR_NO_USABLE_INTERFACE when the connection's local address is on a forbidden interface. */
  check(localAddress: string): void;
}

function isLoopbackAddress(a: string): boolean {
  return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

/** The plan without constraints: the same for every dial and accept (no object per connection). */
const UNCONSTRAINED: InterfacePlan = Object.freeze({ allowed: undefined, usable: () => true, pinFor: () => undefined, check: () => undefined });

export function planInterfaces(c: InterfaceConstraints): InterfacePlan {
  if (!hasInterfaceConstraints(c)) return UNCONSTRAINED;
  const all = currentInterfaces();
  const allowed = satisfyingInterfaces(c, all);
  if (allowed.length === 0) {
    throw new PeerlinkError('ERR_NO_USABLE_INTERFACE', `no interface satisfies the parameters' constraints (interfaces here: ${all.map((i) => `${i.name}/${i.type}${i.flags.up ? '' : ' down'}`).join(', ')})`);
  }
  const names = new Set(allowed.map((i) => i.name));
  return {
    allowed,
    usable(a) {
      if (isLoopbackAddress(a.address)) return allowed.some((i) => i.flags.loopback);
      if (a.zone !== undefined && isLinkLocal6(a.address)) return names.has(a.zone);
      return true;
    },
    pinFor(a) {
      if (a.zone !== undefined && isLinkLocal6(a.address)) return names.has(a.zone) ? a.zone : allowed[0]?.name;
      if (isLoopbackAddress(a.address)) return allowed.find((i) => i.flags.loopback)?.name ?? allowed[0]?.name;
      // The interface whose subnet holds the address, else the only allowed one.
      const direct = interfaceForSource(a.address, allowed);
      if (direct) return direct.name;
      return c.requiredInterface ?? (allowed.length === 1 ? allowed[0]?.name : undefined);
    },
    check(localAddress) {
      const iface = interfaceForSource(localAddress, all);
      if (iface && !names.has(iface.name)) {
        throw new PeerlinkError('ERR_NO_USABLE_INTERFACE', `the route to the peer uses ${iface.name}, which the parameters do not allow`);
      }
    },
  };
}

/** The interface a connection with this local address runs on. */
export function describeInterface(localAddress: string, pinnedTo: string | undefined): PathInterface | undefined {
  const all = currentInterfaces();
  const iface = pinnedTo !== undefined ? all.find((i) => i.name === pinnedTo) : isLoopbackAddress(localAddress) ? all.find((i) => i.flags.loopback) : interfaceForSource(localAddress, all);
  return iface ? { name: iface.name, index: iface.index, type: iface.type, mtu: iface.mtu } : undefined;
}
