/**
 * PathMonitor — Network framework's NWPathMonitor for Node: the current path (status,
 * available interfaces, expensive / constrained) and events when interfaces appear,
 * disappear, go up or down, or change addresses.
 *
 * Change detection: on Linux the kernel's rtnetlink notifications (netlink.ts, a worker
 * thread waiting on the socket), so a change is seen within ~100 ms without polling.
 * Elsewhere, or if that cannot start (no koffi, no netlink), the interfaces are re-read
 * every `pollIntervalMs` (default 2 s) on an unref'd timer. Either way a monitor never keeps
 * the process alive, and `cancel()` stops it.
 */
import { EventEmitter } from 'node:events';
import { listInterfaces, type InterfaceAddress, type InterfaceType, type NetworkInterface } from './interfaces.js';
import {
  constraintViolation,
  constraintsAllowLoopback,
  isConstrainedInterface,
  isExpensiveInterface,
  type InterfaceCosts,
  type PathConstraints,
} from './constraints.js';
import { watchByPolling, watchNetlink, type ChangeWatcher } from './netlink.js';
import { PeerlinkError } from '../errors.js';

/** NWPath.Status. */
export type PathStatus = 'satisfied' | 'unsatisfied' | 'requiresConnection';

export interface Path {
  readonly status: PathStatus;
  /** Usable interfaces that satisfy the constraints, most preferred first. */
  readonly availableInterfaces: readonly NetworkInterface[];
  /** The path's preferred interface is expensive (cellular, or configured). */
  readonly isExpensive: boolean;
  /** The path's preferred interface is constrained (configured). */
  readonly isConstrained: boolean;
  readonly supportsIPv4: boolean;
  readonly supportsIPv6: boolean;
  /** Why the path is not satisfied (human text), when it is not. */
  readonly unsatisfiedReason?: string;
  usesInterfaceType(type: InterfaceType): boolean;
}

export type InterfaceChangeKind = 'added' | 'removed' | 'up' | 'down' | 'addresses' | 'changed';

/** One interface's change between two readings. */
export interface InterfaceChange {
  kind: InterfaceChangeKind;
  interface: NetworkInterface;
  /** The interface as it was (absent for `added`). */
  previous?: NetworkInterface;
  addedAddresses?: InterfaceAddress[];
  removedAddresses?: InterfaceAddress[];
}

export interface PathMonitorOptions extends PathConstraints, InterfaceCosts {
  /** 'auto' (netlink, else polling), 'netlink' (fail if unavailable), 'poll'. */
  detection?: 'auto' | 'netlink' | 'poll';
  /** Polling period when polling (default 2000 ms). */
  pollIntervalMs?: number;
  /** Coalesce bursts of kernel notifications (default 100 ms). */
  debounceMs?: number;
  /** Source of interfaces (tests inject one); default listInterfaces(). */
  list?: () => NetworkInterface[];
}

export interface PathMonitorEvents {
  /** The path changed (status, interfaces, costs); NWPathMonitor's pathUpdateHandler. */
  path: [Path];
  /** One interface changed (emitted for every interface, constrained or not). */
  change: [InterfaceChange];
  /** Change detection fell back from netlink to polling. */
  fallback: [string];
}

const TYPE_PREFERENCE: Record<InterfaceType, number> = { wiredEthernet: 0, wifi: 1, other: 2, cellular: 3, loopback: 4 };

function usable(i: NetworkInterface): boolean {
  return i.flags.up && i.flags.running && i.addresses.length > 0;
}

function addrKey(a: InterfaceAddress): string {
  return `${a.address}/${a.prefixLength}`;
}

/** Builds the path that the given interfaces and constraints make. */
export function computePath(all: readonly NetworkInterface[], constraints: PathConstraints = {}, costs: InterfaceCosts = {}): Path {
  const allowLoopback = constraintsAllowLoopback(constraints, all);
  const candidates = all.filter((i) => (allowLoopback || !i.flags.loopback) && constraintViolation(constraints, i, costs) === undefined);
  const available = candidates
    .filter(usable)
    .sort((a, b) => TYPE_PREFERENCE[a.type] - TYPE_PREFERENCE[b.type] || a.index - b.index);
  let status: PathStatus;
  let unsatisfiedReason: string | undefined;
  if (available.length > 0) status = 'satisfied';
  else if (candidates.some((i) => i.flags.up && !i.flags.loopback)) {
    // An interface is enabled but not yet connected (no carrier, no address): like a
    // dial-on-demand path, it may come up by itself.
    status = 'requiresConnection';
    unsatisfiedReason = 'an interface is up but not connected or has no address yet';
  } else {
    status = 'unsatisfied';
    const why = all.length === 0 ? 'no network interfaces' : candidates.length === 0 ? 'no interface satisfies the constraints' : 'every permitted interface is down';
    unsatisfiedReason = why;
  }
  const first = available[0];
  const types = new Set(available.map((i) => i.type));
  const path: Path = {
    status,
    availableInterfaces: available,
    isExpensive: first !== undefined && isExpensiveInterface(first, costs),
    isConstrained: first !== undefined && isConstrainedInterface(first, costs),
    supportsIPv4: available.some((i) => i.addresses.some((a) => a.family === 'IPv4')),
    supportsIPv6: available.some((i) => i.addresses.some((a) => a.family === 'IPv6')),
    usesInterfaceType: (t: InterfaceType) => types.has(t),
    ...(unsatisfiedReason !== undefined ? { unsatisfiedReason } : {}),
  };
  return path;
}

/** The changes between two readings of the interfaces (keyed by index, then name). */
export function diffInterfaces(before: readonly NetworkInterface[], after: readonly NetworkInterface[]): InterfaceChange[] {
  const changes: InterfaceChange[] = [];
  const key = (i: NetworkInterface): string => `${i.index}:${i.name}`;
  const old = new Map(before.map((i) => [key(i), i]));
  const now = new Map(after.map((i) => [key(i), i]));
  for (const [k, prev] of old) if (!now.has(k)) changes.push({ kind: 'removed', interface: prev, previous: prev });
  for (const [k, cur] of now) {
    const prev = old.get(k);
    if (!prev) {
      changes.push({ kind: 'added', interface: cur });
      continue;
    }
    const wasUp = prev.flags.up && prev.flags.running;
    const isUp = cur.flags.up && cur.flags.running;
    if (wasUp !== isUp) changes.push({ kind: isUp ? 'up' : 'down', interface: cur, previous: prev });
    const prevAddrs = new Map(prev.addresses.map((a) => [addrKey(a), a]));
    const curAddrs = new Map(cur.addresses.map((a) => [addrKey(a), a]));
    const added = [...curAddrs].filter(([k2]) => !prevAddrs.has(k2)).map(([, a]) => a);
    const removed = [...prevAddrs].filter(([k2]) => !curAddrs.has(k2)).map(([, a]) => a);
    if (added.length > 0 || removed.length > 0) changes.push({ kind: 'addresses', interface: cur, previous: prev, addedAddresses: added, removedAddresses: removed });
    const flagsChanged = JSON.stringify(prev.flags) !== JSON.stringify(cur.flags) && wasUp === isUp;
    if (flagsChanged || prev.mtu !== cur.mtu || prev.type !== cur.type || prev.mac !== cur.mac) changes.push({ kind: 'changed', interface: cur, previous: prev });
  }
  return changes;
}

function pathSignature(p: Path): string {
  return JSON.stringify([p.status, p.isExpensive, p.isConstrained, p.availableInterfaces.map((i) => [i.name, i.index, i.type, i.addresses.map(addrKey)])]);
}

export class PathMonitor extends EventEmitter<PathMonitorEvents> {
  private readonly constraints: PathConstraints;
  private readonly costs: InterfaceCosts;
  private readonly detection: 'auto' | 'netlink' | 'poll';
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  private readonly list: () => NetworkInterface[];
  private interfaces: NetworkInterface[] = [];
  private path: Path;
  private watcher: ChangeWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private state: 'setup' | 'starting' | 'running' | 'cancelled' = 'setup';
  private starting: Promise<void> | undefined;
  /** Wakes `paths()` iterators when the monitor is cancelled. */
  private readonly cancelListeners = new Set<() => void>();

  constructor(options: PathMonitorOptions = {}) {
    super();
    const { detection, pollIntervalMs, debounceMs, list, expensive, constrained, ...constraints } = options;
    this.constraints = constraints;
    this.costs = { expensive, constrained };
    this.detection = detection ?? 'auto';
    this.pollIntervalMs = pollIntervalMs ?? 2000;
    this.debounceMs = debounceMs ?? 100;
    if (!(this.pollIntervalMs > 0) || !(this.debounceMs >= 0)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'pollIntervalMs must be > 0 and debounceMs >= 0');
    this.list = list ?? listInterfaces;
    this.interfaces = this.list();
    this.path = computePath(this.interfaces, this.constraints, this.costs);
  }

  /** How changes are detected: 'netlink', 'poll', or undefined before start(). */
  get detectionMode(): 'netlink' | 'poll' | undefined {
    return this.watcher?.kind;
  }

  get currentPath(): Path {
    return this.path;
  }
  get status(): PathStatus {
    return this.path.status;
  }
  get availableInterfaces(): readonly NetworkInterface[] {
    return this.path.availableInterfaces;
  }
  get isExpensive(): boolean {
    return this.path.isExpensive;
  }
  get isConstrained(): boolean {
    return this.path.isConstrained;
  }
  usesInterfaceType(type: InterfaceType): boolean {
    return this.path.usesInterfaceType(type);
  }
  /** Every interface of the host as last read, usable or not. */
  get allInterfaces(): readonly NetworkInterface[] {
    return this.interfaces;
  }

  /**
   * Starts watching. Resolves when change detection is armed (a change made afterwards is
   * reported) and emits the initial `path` on the next tick, as NWPathMonitor does.
   */
  start(): Promise<void> {
    if (this.state === 'cancelled') return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'a cancelled PathMonitor cannot be restarted; make a new one'));
    if (this.starting) return this.starting;
    this.state = 'starting';
    this.starting = this.arm().then(() => {
      if (this.state !== 'starting') return;
      this.state = 'running';
      // Re-read: something may have changed while the watcher was being set up.
      this.refresh();
      queueMicrotask(() => {
        if (this.state === 'running') this.emit('path', this.path);
      });
    });
    return this.starting;
  }

  private async arm(): Promise<void> {
    if (this.detection !== 'poll') {
      const w = await watchNetlink(
        () => this.schedule(),
        (reason) => void this.fallBack(reason),
      );
      if (w) {
        if (this.state === 'cancelled') await w.close();
        else this.watcher = w;
        return;
      }
      if (this.detection === 'netlink') throw new PeerlinkError('ERR_INTERNAL', 'netlink change notifications are not available here (Linux with koffi needed); use detection "poll"');
    }
    if (this.state !== 'cancelled') this.watcher = watchByPolling(() => this.refresh(), this.pollIntervalMs);
  }

  private async fallBack(reason: string): Promise<void> {
    if (this.state === 'cancelled') return;
    const old = this.watcher;
    this.watcher = watchByPolling(() => this.refresh(), this.pollIntervalMs);
    await old?.close();
    this.emit('fallback', reason);
    this.refresh();
  }

  private schedule(): void {
    if (this.debounce || this.state === 'cancelled') return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.refresh();
    }, this.debounceMs);
    this.debounce.unref();
  }

  /** Re-reads the interfaces now and emits what changed. Safe to call at any time. */
  refresh(): void {
    if (this.state === 'cancelled') return;
    let next: NetworkInterface[];
    try {
      next = this.list();
    } catch {
      return; // a transient read failure (an interface vanishing mid-read): the next event retries
    }
    const changes = diffInterfaces(this.interfaces, next);
    this.interfaces = next;
    if (changes.length === 0) return;
    const before = pathSignature(this.path);
    this.path = computePath(next, this.constraints, this.costs);
    for (const c of changes) this.emit('change', c);
    if (pathSignature(this.path) !== before) this.emit('path', this.path);
  }

  /** Stops watching; no events after this. */
  async cancel(): Promise<void> {
    if (this.state === 'cancelled') return;
    this.state = 'cancelled';
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    const w = this.watcher;
    this.watcher = undefined;
    for (const wakeIterator of [...this.cancelListeners]) wakeIterator();
    await w?.close();
  }

  /** Paths as they change (the first is the current one), until cancel() or `signal` aborts. */
  async *paths(signal?: AbortSignal): AsyncGenerator<Path> {
    const queue: Path[] = [this.path];
    let wake: (() => void) | undefined;
    const onPath = (p: Path): void => {
      queue.push(p);
      wake?.();
    };
    const onEnd = (): void => wake?.();
    this.on('path', onPath);
    this.cancelListeners.add(onEnd);
    signal?.addEventListener('abort', onEnd);
    try {
      while (!signal?.aborted && this.state !== 'cancelled') {
        const p = queue.shift();
        if (p) {
          yield p;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('path', onPath);
      this.cancelListeners.delete(onEnd);
      signal?.removeEventListener('abort', onEnd);
    }
  }
}
