/**
 * Draining an rtnetlink socket, shared by the polling watcher (netlink-poll.ts) and the worker
 * thread (netlink-worker.ts). The content of the messages does not matter, only that something
 * arrived: any message means "interfaces changed".
 */

const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;

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
