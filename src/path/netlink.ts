/**
 * "Interfaces changed" notifications from the Linux kernel (rtnetlink groups LINK,
 * IPV4_IFADDR, IPV6_IFADDR): by default drained from the main thread every 250 ms
 * (netlink-poll.ts); with PEERLINK_NETLINK_WORKER=1 through a worker thread (netlink-worker.ts)
 * that waits on the socket. The worker is unref'd once armed, so a watcher never keeps the process alive; `close()`
 * wakes it through an eventfd and it exits at once.
 *
 * Returns undefined where this cannot work (not Linux, koffi missing, no netlink): the
 * caller falls back to polling.
 */
import type { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { startNetlinkPoll } from './netlink-poll.js';

export interface ChangeWatcher {
  readonly kind: 'netlink' | 'poll';
  close(): Promise<void>;
}

type WorkerMessage = { type: 'ready'; wakeFd: number } | { type: 'change' } | { type: 'error'; message: string };

interface WakeLib {
  write(fd: number, buf: Buffer, len: number): number;
  close(fd: number): number;
}

let wakeLib: WakeLib | null | undefined;

function loadWakeLib(): WakeLib | null {
  if (wakeLib !== undefined) return wakeLib;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as { load(path: string): { func(decl: string): (...args: unknown[]) => unknown } };
    const lib = koffi.load('libc.so.6');
    const write = lib.func('long write(int, void *, size_t)');
    const close = lib.func('int close(int)');
    wakeLib = {
      write: (fd, buf, len) => Number(write(fd, buf, len)),
      close: (fd) => Number(close(fd)),
    };
  } catch {
    wakeLib = null;
  }
  return wakeLib;
}

interface Subscriber {
  onChange(): void;
  onFailure(reason: string): void;
}

interface Hub {
  subscribers: Set<Subscriber>;
  watcher: ChangeWatcher;
}

// One worker per process, shared by every watcher: a library may run many PathMonitors
// (one per engine, per connection) and each would otherwise cost a thread.
let hub: Promise<Hub | undefined> | undefined;
let stopping: Promise<void> = Promise.resolve();

/**
 * Subscribes to netlink change notifications. Resolves once the socket is subscribed (so a
 * change made after this resolves is reported), or with undefined when netlink is
 * unavailable. All subscribers share one worker, which stops when the last one closes.
 */
export async function watchNetlink(onChange: () => void, onFailure: (reason: string) => void): Promise<ChangeWatcher | undefined> {
  await stopping;
  if (!hub) {
    const subscribers = new Set<Subscriber>();
    // In-thread by default (netlink-poll.ts: no ~10 MiB worker isolate per process);
    // PEERLINK_NETLINK_WORKER=1 keeps the worker, which reports changes without the ≤250 ms wait.
    const start = process.env.PEERLINK_NETLINK_WORKER === '1' ? startWorker : (c: () => void, f: (reason: string) => void): Promise<ChangeWatcher | undefined> => Promise.resolve(startNetlinkPoll(c, f));
    const starting: Promise<Hub | undefined> = start(
      () => {
        for (const sub of [...subscribers]) sub.onChange();
      },
      (reason) => {
        // the worker is gone: every subscriber falls back, and the next subscription retries
        const subs = [...subscribers];
        subscribers.clear();
        if (hub === starting) hub = undefined;
        for (const sub of subs) sub.onFailure(reason);
      },
    ).then((watcher) => (watcher ? { subscribers, watcher } : undefined));
    hub = starting;
  }
  const mine = hub;
  const h = await mine;
  if (!h) {
    if (hub === mine) hub = undefined;
    return undefined;
  }
  // the hub may have been stopped while we waited for it: subscribe to a fresh one
  if (hub !== mine) return watchNetlink(onChange, onFailure);
  const sub: Subscriber = { onChange, onFailure };
  h.subscribers.add(sub);
  let closed = false;
  return {
    kind: 'netlink',
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      h.subscribers.delete(sub);
      if (h.subscribers.size === 0 && hub === mine) {
        hub = undefined;
        stopping = h.watcher.close();
        await stopping;
      }
    },
  };
}

/** Starts one worker; resolves once its socket is subscribed, or undefined. */
async function startWorker(onChange: () => void, onFailure: (reason: string) => void): Promise<ChangeWatcher | undefined> {
  if (process.platform !== 'linux') return undefined;
  const lib = loadWakeLib();
  if (!lib) return undefined;
  let worker: Worker;
  try {
    const { Worker } = await import('node:worker_threads');
    worker = new Worker(new URL('./netlink-worker.js', import.meta.url));
  } catch {
    return undefined;
  }
  let wakeFd = -1;
  let closed = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  const ready = await new Promise<boolean>((resolve) => {
    const onMessage = (m: WorkerMessage): void => {
      if (m.type === 'ready') {
        wakeFd = m.wakeFd;
        resolve(true);
      } else if (m.type === 'change') {
        if (!closed) onChange();
      } else if (m.type === 'error') {
        resolve(false);
        if (!closed && wakeFd >= 0) onFailure(m.message);
      }
    };
    worker.on('message', onMessage);
    worker.once('error', (err) => {
      resolve(false);
      if (!closed && wakeFd >= 0) onFailure(err.message);
    });
    worker.once('exit', () => {
      resolve(false);
      if (!closed && wakeFd >= 0) onFailure('netlink worker exited');
    });
  });

  const wake = (): void => {
    if (wakeFd < 0) return;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    lib.write(wakeFd, one, 8);
  };
  // A worker blocked in poll() would hold up process exit (Node joins worker threads), so
  // wake it from an 'exit' hook if nobody closed the watcher.
  const onExit = (): void => wake();
  process.once('exit', onExit);

  if (!ready) {
    process.off('exit', onExit);
    await worker.terminate().catch(() => undefined);
    return undefined;
  }
  // Only now: unref'd while waiting for 'ready', a short script could end before it arrived.
  // (Adding a 'message' listener after unref() would ref the worker again, so none is added later.)
  worker.unref();

  return {
    kind: 'netlink',
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      process.off('exit', onExit);
      // Hold the event loop open until the worker has really gone (it is unref'd).
      worker.ref();
      wake();
      await exited;
      if (wakeFd >= 0) lib.close(wakeFd);
      wakeFd = -1;
    },
  };
}

/** The fallback: call `onTick` every `intervalMs`, unref'd so it never keeps the process alive. */
export function watchByPolling(onTick: () => void, intervalMs: number): ChangeWatcher {
  const timer = setInterval(onTick, intervalMs);
  timer.unref();
  return {
    kind: 'poll',
    close(): Promise<void> {
      clearInterval(timer);
      return Promise.resolve();
    },
  };
}
