/**
 * Opening and draining an rtnetlink socket, shared by the polling watcher (netlink-poll.ts) and
 * the worker thread (netlink-worker.ts). The content of the messages does not matter, only that
 * something arrived: any message means "interfaces changed".
 */

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const RTMGRP_LINK = 0x1;
const RTMGRP_IPV4_IFADDR = 0x10;
const RTMGRP_IPV6_IFADDR = 0x100;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;

/** socket(2) arguments for a non-blocking, close-on-exec rtnetlink socket. */
export const NETLINK_SOCKET = { domain: AF_NETLINK, type: SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol: NETLINK_ROUTE } as const;

/** The bind(2) address subscribing to link and IPv4/IPv6 address changes. */
export function netlinkAddress(): Buffer {
  // struct sockaddr_nl { u16 family; u16 pad; u32 pid (0: the kernel assigns it); u32 groups; }
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  addr.writeUInt32LE(0, 4);
  addr.writeUInt32LE(RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, 8);
  return addr;
}

/** The two libc calls a drain needs. */
export interface NetlinkRecv {
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  errno(): number;
}

/** How a drain ended: a recv() error, an empty queue, or the bound of reads reached first. */
export type DrainEnd = 'error' | 'empty' | 'bounded';

/** Reads everything queued on `sock` (at most 1000 reads). */
export function drainNetlink(libc: NetlinkRecv, sock: number, buf: Buffer, flags: number): { changed: boolean; end: DrainEnd } {
  let changed = false;
  for (let i = 0; i < 1000; i++) {
    const r = libc.recv(sock, buf, buf.length, flags);
    if (r > 0) {
      changed = true;
      continue;
    }
    const e = libc.errno();
    // ENOBUFS: the kernel dropped messages for us; a re-read of the interfaces covers it.
    if (r < 0 && e === ENOBUFS) {
      changed = true;
      continue;
    }
    if (r < 0 && e === EINTR) continue;
    return { changed, end: r < 0 && e !== EAGAIN ? 'error' : 'empty' };
  }
  return { changed, end: 'bounded' };
}
