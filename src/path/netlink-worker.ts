/**
 * Worker thread behind the netlink watcher (netlink.ts): an rtnetlink socket subscribed to
 * link and IPv4/IPv6 address changes, waited on with poll(2) together with an eventfd the
 * main thread writes to when it wants the worker to stop. It never parses the messages:
 * any message means "interfaces changed", and the main thread re-reads them.
 *
 * It lives in a worker because Node cannot wait on a netlink fd itself (libuv only wraps
 * TCP/UDP/pipe fds), and a blocking poll on the main thread or the libuv pool would stall
 * other work. Messages to the parent: {type:'ready', wakeFd}, {type:'change'},
 * {type:'error', message}.
 */
import { parentPort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { drainNetlink, netlinkAddress, NETLINK_SOCKET } from './netlink-drain.js';

const EFD_CLOEXEC = 0o2000000;
const POLLIN = 0x1;
const EINTR = 4;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  poll(fds: Buffer, nfds: number, timeout: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  read(fd: number, buf: Buffer, len: number): number;
  close(fd: number): number;
  eventfd(initval: number, flags: number): number;
  errno(): number;
}

function loadLibc(): Libc {
  // koffi is CommonJS-compatible and loaded lazily: without it the monitor polls instead.
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as {
    load(path: string): { func(decl: string): (...args: unknown[]) => unknown };
    errno(): number;
  };
  const lib = koffi.load('libc.so.6');
  const f = (decl: string): ((...args: unknown[]) => number) => lib.func(decl) as (...args: unknown[]) => number;
  const socket = f('int socket(int, int, int)');
  const bind = f('int bind(int, void *, uint32_t)');
  const poll = f('int poll(void *, unsigned long, int)');
  const recv = f('long recv(int, void *, size_t, int)');
  const read = f('long read(int, void *, size_t)');
  const close = f('int close(int)');
  const eventfd = f('int eventfd(unsigned int, int)');
  return {
    socket: (a, b, c) => socket(a, b, c),
    bind: (fd, addr, len) => bind(fd, addr, len),
    poll: (fds, n, t) => poll(fds, n, t),
    recv: (fd, buf, len, flags) => Number(recv(fd, buf, len, flags)),
    read: (fd, buf, len) => Number(read(fd, buf, len)),
    close: (fd) => close(fd),
    eventfd: (v, fl) => eventfd(v, fl),
    errno: () => koffi.errno(),
  };
}

function main(): void {
  const port = parentPort;
  if (!port) return;
  let libc: Libc;
  try {
    libc = loadLibc();
  } catch (err) {
    port.postMessage({ type: 'error', message: `koffi unavailable: ${(err as Error).message}` });
    return;
  }
  const sock = libc.socket(NETLINK_SOCKET.domain, NETLINK_SOCKET.type, NETLINK_SOCKET.protocol);
  if (sock < 0) {
    port.postMessage({ type: 'error', message: `netlink socket() failed, errno ${libc.errno()}` });
    return;
  }
  const addr = netlinkAddress();
  if (libc.bind(sock, addr, addr.length) !== 0) {
    const e = libc.errno();
    libc.close(sock);
    port.postMessage({ type: 'error', message: `netlink bind() failed, errno ${e}` });
    return;
  }
  const wake = libc.eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    libc.close(sock);
    port.postMessage({ type: 'error', message: `eventfd() failed, errno ${libc.errno()}` });
    return;
  }
  port.postMessage({ type: 'ready', wakeFd: wake });

  // struct pollfd { int fd; short events; short revents; } x 2
  const fds = Buffer.alloc(16);
  const buf = Buffer.alloc(64 * 1024);
  let failures = 0;
  for (;;) {
    fds.writeInt32LE(sock, 0);
    fds.writeInt16LE(POLLIN, 4);
    fds.writeInt16LE(0, 6);
    fds.writeInt32LE(wake, 8);
    fds.writeInt16LE(POLLIN, 12);
    fds.writeInt16LE(0, 14);
    const n = libc.poll(fds, 2, -1);
    if (n < 0) {
      if (libc.errno() === EINTR) continue;
      // A poll that keeps failing would spin: give up and let the parent fall back.
      if (++failures > 10) {
        port.postMessage({ type: 'error', message: `poll() failed, errno ${libc.errno()}` });
        break;
      }
      continue;
    }
    if (fds.readInt16LE(14) !== 0) break; // woken: stop
    if (fds.readInt16LE(6) === 0) continue;
    // Drain everything queued; the content does not matter, only that something changed.
    const { changed, end } = drainNetlink(libc, sock, buf, 0);
    if (end === 'error') failures++;
    if (changed) port.postMessage({ type: 'change' });
    if (failures > 10) {
      port.postMessage({ type: 'error', message: 'netlink recv() keeps failing' });
      break;
    }
  }
  libc.close(sock);
  const eight = Buffer.alloc(8);
  libc.read(wake, eight, 8);
  // The wake fd is closed by the parent after this thread exits (it may still write to it).
}

main();
