/**
 * A connection's path: what it is at ready (addresses, the interface and how it was chosen),
 * and what it becomes when PathMonitor reports its interface gone, back, or with a new MTU.
 */
import { Endpoint } from './endpoint.js';
import type { Established } from './establish.js';
import { describeInterface } from './interface-policy.js';
import type { ConnectionPath } from './path.js';
import { watchViability, type PathUpdate, type ViabilityWatch } from './viability.js';

/** The path of a channel that just became ready; undefined when its addresses are not known. */
export function pathAtReady(e: Established): ConnectionPath | undefined {
  const ch = e.channel;
  const local = ch.local;
  const remote = ch.remote;
  if (!local || !remote) return undefined;
  const iface = describeInterface(local.address, e.pinnedTo);
  // Node reports link-local addresses with their zone (`fe80::1%eth0`): endpoints keep it apart.
  const remoteEndpoint = Endpoint.hostPort(remote.address, remote.port, e.remote.interface !== undefined ? { interface: e.remote.interface } : {});
  return {
    localEndpoint: Endpoint.hostPort(local.address, local.port),
    remoteEndpoint,
    ...(iface ? { interface: iface } : {}),
    interfaceSource: e.pinnedTo !== undefined ? 'pinned' : iface ? 'route' : 'unknown',
    status: 'satisfied',
  };
}

/** Watches the path's interface (not loopback: lo does not go away); undefined when not watched. */
export function watchPath(path: ConnectionPath | undefined, changed: (u: PathUpdate) => void): ViabilityWatch | undefined {
  const iface = path?.interface;
  if (iface && iface.type !== 'loopback' && path) return watchViability(iface.name, path.localEndpoint.host, iface.mtu, changed);
  return undefined;
}

/** The path after an update: its status, and the interface's new MTU when there is one. */
export function updatedPath(path: ConnectionPath, u: PathUpdate): ConnectionPath {
  const status = u.viable ? 'satisfied' : 'unsatisfied';
  return { ...path, status, ...(path.interface && u.mtu !== undefined ? { interface: { ...path.interface, mtu: u.mtu } } : {}) };
}
