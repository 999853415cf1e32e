/**
 * Socket options Node does not expose, set through a tiny FFI (koffi → libc setsockopt).
 * Everything that touches a raw fd lives here. Linux only; elsewhere (or if koffi cannot
 * load libc) every function reports `false` and callers degrade as docs/net.md describes:
 * no interface pinning (the interface in currentPath is then inferred from the route), no
 * keepalive count/interval, and connectionDropTime enforced by a send-progress timer only.
 */
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import type { Socket as DgramSocket } from 'node:dgram';

const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
const IPPROTO_TCP = 6;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const TCP_USER_TIMEOUT = 18;
const TCP_INFO = 11;
/** Room for struct tcp_info as this kernel lays it out (232 bytes on 6.x) and fields later kernels append. */
const TCP_INFO_ROOM = 512;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

interface Libc {
  setsockopt: (fd: number, level: number, name: number, value: Buffer, len: number) => number;
  getsockopt: (fd: number, level: number, name: number, value: Buffer, len: Buffer) => number;
  socket: (domain: number, type: number, protocol: number) => number;
  close: (fd: number) => number;
  errno: () => number;
  /** glibc only (undefined on musl and elsewhere). */
  mallocTrim: ((pad: number) => number) | undefined;
}

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== 'linux') return libc;
  try {
    // koffi is CommonJS and optional at run time: a failure here only disables the extras.
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as {
      load: (name: string) => { func: (decl: string) => (...args: unknown[]) => unknown };
      decode: (ptr: unknown, type: string) => unknown;
    };
    const lib = koffi.load('libc.so.6');
    const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)');
    const getsockopt = lib.func('int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)');
    const socket = lib.func('int socket(int domain, int type, int protocol)');
    const close = lib.func('int close(int fd)');
    const errnoLocation = lib.func('int *__errno_location()');
    let mallocTrim: ((pad: number) => number) | undefined;
    try {
      const f = lib.func('int malloc_trim(size_t pad)');
      mallocTrim = (pad) => f(pad) as number;
    } catch {
      // not glibc
    }
    libc = {
      setsockopt: (fd, level, name, value, len) => setsockopt(fd, level, name, value, len) as number,
      getsockopt: (fd, level, name, value, len) => getsockopt(fd, level, name, value, len) as number,
      socket: (d, t, p) => socket(d, t, p) as number,
      close: (fd) => close(fd) as number,
      errno: () => koffi.decode(errnoLocation(), 'int') as number,
      mallocTrim,
    };
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * glibc's malloc_trim(0): returns the free pages inside the malloc heap to the kernel. A burst
 * of connections (TLS handshakes, duplicate dials) leaves freed chunks scattered through the
 * heap, which glibc otherwise only returns from its top (docs/memory.md "Per peer"). Process-wide;
 * a few ms. Returns false where it is not available (not Linux/glibc, or koffi cannot load).
 */
export function releaseFreeMemory(): boolean {
  const trim = load()?.mallocTrim;
  if (!trim) return false;
  trim(0);
  return true;
}

/** True when raw socket options can be set on this platform. */
export function sockoptAvailable(): boolean {
  return load() !== null;
}

/** The fd behind a connected net.Socket or bound dgram socket; undefined when not reachable. */
export function socketFd(socket: Socket | DgramSocket): number | undefined {
  // Node keeps the fd on the libuv handle wrapper; there is no public accessor.
  const holder = socket as unknown as { _handle?: { fd?: number }; [k: symbol]: unknown };
  let fd = holder._handle?.fd;
  if (fd === undefined) {
    // dgram keeps its state under a symbol ('state symbol') with the handle inside.
    for (const sym of Object.getOwnPropertySymbols(socket)) {
      const state = holder[sym] as { handle?: { fd?: number } } | undefined;
      if (state && typeof state === 'object' && state.handle && typeof state.handle.fd === 'number') fd = state.handle.fd;
    }
  }
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function setInt(fd: number, level: number, name: number, value: number): boolean {
  const l = load();
  if (!l) return false;
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  return l.setsockopt(fd, level, name, b, 4) === 0;
}

/** SO_BINDTODEVICE on an fd. */
function bindFd(fd: number, ifname: string): boolean {
  const l = load();
  if (!l) return false;
  const name = Buffer.from(`${ifname}\0`);
  return l.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, name.length) === 0;
}

/** Pins an existing (bound or connected) socket to an interface. */
export function bindToDevice(socket: Socket | DgramSocket, ifname: string): boolean {
  const fd = socketFd(socket);
  return fd !== undefined && bindFd(fd, ifname);
}

/**
 * A TCP socket that is pinned to `ifname` before it connects (SO_BINDTODEVICE must precede
 * connect() to steer the SYN). Returns undefined when pinning is unavailable; the caller
 * then connects an ordinary socket and reports the route instead.
 */
export function createPinnedTcpSocket(family: 4 | 6, ifname: string): Socket | undefined {
  const l = load();
  if (!l) return undefined;
  const fd = l.socket(family === 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return undefined;
  if (!bindFd(fd, ifname)) {
    l.close(fd);
    return undefined;
  }
  // manualStart: the fd is not connected yet, so Node must not start reading it until connect().
  return new Socket({ fd, manualStart: true, readable: true, writable: true, allowHalfOpen: true } as ConstructorParameters<typeof Socket>[0]);
}

export interface TcpTuning {
  keepaliveCount?: number;
  keepaliveInterval?: number;
  userTimeout?: number;
}

/** TCP_KEEPCNT / TCP_KEEPINTVL / TCP_USER_TIMEOUT; returns which could be applied. */
export function tuneTcp(socket: Socket, t: TcpTuning): { keepalive: boolean; userTimeout: boolean } {
  const fd = socketFd(socket);
  const out = { keepalive: false, userTimeout: false };
  if (fd === undefined || !load()) return out;
  let ka = true;
  if (t.keepaliveCount !== undefined) ka = setInt(fd, IPPROTO_TCP, TCP_KEEPCNT, Math.max(1, Math.round(t.keepaliveCount))) && ka;
  if (t.keepaliveInterval !== undefined) ka = setInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, Math.max(1, Math.round(t.keepaliveInterval / 1000))) && ka;
  out.keepalive = ka;
  if (t.userTimeout !== undefined) out.userTimeout = setInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, Math.max(1, Math.round(t.userTimeout)));
  return out;
}

/** Reads back the TCP tuning of a socket (for reports and tests); undefined where unavailable. */
export function readTcpTuning(socket: Socket): { keepaliveCount: number; keepaliveInterval: number; userTimeout: number } | undefined {
  const l = load();
  const fd = socketFd(socket);
  if (!l || fd === undefined) return undefined;
  const get = (name: number): number | undefined => {
    const v = Buffer.alloc(4);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(4, 0);
    return l.getsockopt(fd, IPPROTO_TCP, name, v, len) === 0 ? v.readInt32LE(0) : undefined;
  };
  const count = get(TCP_KEEPCNT);
  const interval = get(TCP_KEEPINTVL);
  const user = get(TCP_USER_TIMEOUT);
  if (count === undefined || interval === undefined || user === undefined) return undefined;
  return { keepaliveCount: count, keepaliveInterval: interval * 1000, userTimeout: user };
}

/**
 * getsockopt(IPPROTO_TCP, TCP_INFO) on the TCP socket: the raw struct tcp_info, cut to the
 * length the kernel filled (older kernels fill less; tcp-info.ts reads only what is there).
 * Undefined where it cannot be read (not Linux, no koffi, no fd, socket closed).
 */
export function readTcpInfoBuffer(socket: Socket): Buffer | undefined {
  const l = load();
  const fd = socketFd(socket);
  if (!l || fd === undefined) return undefined;
  const v = Buffer.alloc(TCP_INFO_ROOM);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(TCP_INFO_ROOM, 0);
  if (l.getsockopt(fd, IPPROTO_TCP, TCP_INFO, v, len) !== 0) return undefined;
  return v.subarray(0, Math.min(TCP_INFO_ROOM, len.readUInt32LE(0)));
}
