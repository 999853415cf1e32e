/**
 * Connection viability from PathMonitor: a connection whose interface goes down, disappears
 * or loses the local address becomes not viable, and viable again when it comes back; an MTU
 * change on its interface is reported too (the connection's `path` event).
 * One monitor is shared by the live connections of a process and cancelled with the last
 * one (a netlink watcher per connection would be wasteful). Loopback connections are not
 * watched: lo does not go away.
 */
import { PathMonitor, type InterfaceChange } from '../path/monitor.js';

export interface ViabilityWatch {
  stop(): void;
}

type Listener = (c: InterfaceChange) => void;

let shared: { monitor: PathMonitor; listeners: Set<Listener> } | undefined;

function subscribe(fn: Listener): () => void {
  if (!shared) {
    const monitor = new PathMonitor();
    const listeners = new Set<Listener>();
    monitor.on('change', (c) => {
      for (const l of listeners) l(c);
    });
    // Viability is advisory: if change detection cannot start, connections simply stay viable.
    monitor.start().catch(() => undefined);
    shared = { monitor, listeners };
  }
  const s = shared;
  s.listeners.add(fn);
  return () => {
    s.listeners.delete(fn);
    if (s.listeners.size === 0 && shared === s) {
      shared = undefined;
      void s.monitor.cancel().catch(() => undefined);
    }
  };
}

/** What changed on a watched connection's interface. */
export interface PathUpdate {
  viable: boolean;
  /** The interface's MTU now (it may change while the connection is viable). */
  mtu: number | undefined;
}

/**
 * Watches `ifname` (carrying `localAddress`) and reports when the connection's viability or
 * its interface's MTU changes (the facts a connection's `path` carries after ready).
 */
export function watchViability(ifname: string, localAddress: string, mtu: number, onChange: (u: PathUpdate) => void): ViabilityWatch {
  let viable = true;
  let lastMtu: number | undefined = mtu;
  const bare = (localAddress.split('%')[0] ?? localAddress).replace(/^::ffff:/, '');
  const unsubscribe = subscribe((c) => {
    if (c.interface.name !== ifname) return;
    const hasAddress = c.interface.addresses.some((a) => a.address === bare);
    // Up and running (carrier), as the monitor's own up/down: a link without carrier is not viable.
    const now = c.kind !== 'removed' && c.kind !== 'down' && c.interface.flags.up && c.interface.flags.running && hasAddress;
    const nowMtu = c.kind === 'removed' ? lastMtu : c.interface.mtu;
    if (now !== viable || nowMtu !== lastMtu) {
      viable = now;
      lastMtu = nowMtu;
      onChange({ viable, mtu: nowMtu });
    }
  });
  return { stop: unsubscribe };
}
