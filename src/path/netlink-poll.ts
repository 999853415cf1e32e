/**
 * The rtnetlink change watcher without a thread: the socket (non-blocking, subscribed to LINK,
 * IPV4_IFADDR and IPV6_IFADDR) is drained from the main thread every CHECK_MS by an unref'd
 * timer. Node cannot wait on a netlink fd (libuv wraps only TCP/UDP/pipe fds); a worker thread
 * that blocks in poll(2) reports changes at once but costs a whole V8 isolate (~10 MiB of RSS
 * per process — a tenth of a peer's memory in a 100-peer lab). Here a change is seen within
 * CHECK_MS, at the cost of one recv() that returns EAGAIN four times a second. Like the worker,
 * it never parses messages: any message means "interfaces changed".
 */
import { createRequire } from 'node:module';
import type { ChangeWatcher } from './netlink.js';
import { drainNetlink, netlinkAddress, NETLINK_SOCKET } from './netlink-drain.js';

const MSG_DONTWAIT = 0x40;
/** How often the socket is drained, ms: the longest a change waits to be noticed. */
export const CHECK_MS = 250;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  close(fd: number): number;
  errno(): number;
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as { load(path: string): { func(decl: string): (...args: unknown[]) => unknown }; errno(): number };
    const lib = koffi.load('libc.so.6');
    const f = (decl: string): ((...args: unknown[]) => unknown) => lib.func(decl);
    const socket = f('int socket(int, int, int)');
    const bind = f('int bind(int, void *, uint32_t)');
    const recv = f('long recv(int, void *, size_t, int)');
    const close = f('int close(int)');
    libc = {
      socket: (a, b, c) => Number(socket(a, b, c)),
      bind: (fd, addr, len) => Number(bind(fd, addr, len)),
      recv: (fd, buf, len, flags) => Number(recv(fd, buf, len, flags)),
      close: (fd) => Number(close(fd)),
      errno: () => koffi.errno(),
    };
  } catch {
    libc = null;
  }
  return libc;
}

/** Opens and subscribes the socket; undefined where that cannot work (the caller polls the interfaces instead). */
export function startNetlinkPoll(onChange: () => void, onFailure: (reason: string) => void): ChangeWatcher | undefined {
  if (process.platform !== 'linux') return undefined;
  const lib = loadLibc();
  if (!lib) return undefined;
  const sock = lib.socket(NETLINK_SOCKET.domain, NETLINK_SOCKET.type, NETLINK_SOCKET.protocol);
  if (sock < 0) return undefined;
  const addr = netlinkAddress();
  if (lib.bind(sock, addr, addr.length) !== 0) {
    lib.close(sock);
    return undefined;
  }
  const buf = Buffer.alloc(64 * 1024);
  let failures = 0;
  let closed = false;
  const drain = (): void => {
    const { changed, end } = drainNetlink(lib, sock, buf, MSG_DONTWAIT);
    if (end === 'error') failures++;
    else if (end === 'empty') failures = 0;
    if (changed) onChange();
    if (failures > 10 && !closed) {
      stop();
      onFailure('netlink recv() keeps failing');
    }
  };
  const timer = setInterval(drain, CHECK_MS);
  timer.unref();
  const stop = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    lib.close(sock);
  };
  return {
    kind: 'netlink',
    close(): Promise<void> {
      stop();
      return Promise.resolve();
    },
  };
}
