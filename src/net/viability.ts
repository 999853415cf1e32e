/**
 * Connection viability from PathMonitor: a connection whose interface goes down, disappears
 * or loses the local address becomes not viable, and viable again when it comes back.
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

/** Watches `ifname` (carrying `localAddress`) and reports viability changes. */
export function watchViability(ifname: string, localAddress: string, onChange: (viable: boolean) => void): ViabilityWatch {
  let viable = true;
  const bare = (localAddress.split('%')[0] ?? localAddress).replace(/^::ffff:/, '');
  const unsubscribe = subscribe((c) => {
    if (c.interface.name !== ifname) return;
    const hasAddress = c.interface.addresses.some((a) => a.address === bare);
    const now = c.kind !== 'removed' && c.kind !== 'down' && c.interface.flags.up && hasAddress;
    if (now !== viable) {
      viable = now;
      onChange(now);
    }
  });
  return { stop: unsubscribe };
}
