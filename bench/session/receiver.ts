/**
 * The session benchmark's receiving processes (forked by bench.ts): the receiver / echo side
 * of the message, RTT and bulk scenarios, and a fresh receiver per resource transfer.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import tls, { type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { PeerSession } from '../../src/session/index.js';
import { sessionOptions, tlsServerOptions, type ChildMsg, type ParentMsg } from './common.js';

export async function child(): Promise<void> {
  const send = (m: ChildMsg): void => {
    process.send?.(m);
  };
  const session = new PeerSession(sessionOptions('bench-b'));
  let expect = 0;
  let got = 0;
  let echo = false;
  session.on('message', (data, peer) => {
    if (echo) {
      session.send(data, { to: peer }).catch(() => undefined);
      return;
    }
    if (++got === expect) send({ type: 'done', what: 'messages', count: got, bytes: 0 });
  });
  session.on('stream', (stream: Duplex) => {
    let bytes = 0;
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.on('end', () => {
      send({ type: 'done', what: 'stream', count: 1, bytes });
      stream.end();
    });
  });
  await session.start();

  let rawExpect = 0;
  let rawGot = 0;
  let rawBytes = 0;
  // What an app does with each raw message: gets it as its own Buffer view, like the session's `message` event.
  const onRawMessage = (payload: Buffer): void => {
    rawBytes += payload.length;
    if (++rawGot === rawExpect) send({ type: 'done', what: 'raw-messages', count: rawGot, bytes: rawBytes });
  };
  const server = tls.createServer(tlsServerOptions(), (sock: TLSSocket) => {
    sock.setNoDelay(true);
    let pending: Buffer[] = [];
    let held = 0;
    let bulk = 0;
    let mode: 'frames' | 'bulk' | undefined;
    sock.on('data', (chunk: Buffer) => {
      if (mode === undefined) mode = chunk[0] === 0xff ? 'bulk' : 'frames';
      if (mode === 'bulk') {
        bulk += chunk.length;
        return;
      }
      pending.push(chunk);
      held += chunk.length;
      let buf = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, held);
      let off = 0;
      const replies: Buffer[] = [];
      while (buf.length - off >= 4) {
        const len = buf.readUInt32BE(off);
        if (buf.length - off - 4 < len) break;
        if (echo) replies.push(buf.subarray(off, off + 4 + len));
        else onRawMessage(buf.subarray(off + 4, off + 4 + len));
        off += 4 + len;
      }
      if (replies.length) sock.write(replies.length === 1 ? (replies[0] as Buffer) : Buffer.concat(replies));
      buf = buf.subarray(off);
      pending = buf.length ? [buf] : [];
      held = buf.length;
    });
    sock.on('end', () => {
      if (mode === 'bulk') send({ type: 'done', what: 'raw-bulk', count: 1, bytes: bulk });
      sock.end();
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('message', (m: ParentMsg) => {
    if (m.type === 'expect') {
      if (m.what === 'messages') {
        expect = m.count;
        got = 0;
      } else {
        rawExpect = m.count;
        rawGot = 0;
      }
    } else if (m.type === 'echo') echo = m.on;
    else if (m.type === 'cpu') {
      const u = process.cpuUsage();
      send({ type: "cpu", micros: u.user + u.system });
    } else if (m.type === 'quit') {
      void session.close().finally(() => process.exit(0));
    }
  });
  send({ type: 'ready', sessionPort: session.listenPort, rawPort: (server.address() as AddressInfo).port });
}

/**
 * A fresh process per resource receive, so its peak RSS (getrusage maxrss) belongs to that
 * one transfer. `session`: a PeerSession saving into a temp dir; `raw`: a TLS server that
 * reads an 8-byte size, then streams the bytes to a file while hashing them (what an app
 * would write by hand), and answers with the digest.
 */
export async function resourceChild(kind: string, dir: string): Promise<void> {
  const send = (m: ChildMsg): void => {
    process.send?.(m);
  };
  const maxRssKiB = (): number => process.resourceUsage().maxRSS;
  if (kind === 'session') {
    const session = new PeerSession(sessionOptions('bench-r', { resources: { directory: dir } }));
    session.on('resource', (incoming) => {
      incoming.done.then(
        (r) => send({ type: 'done', what: 'resource', count: 1, bytes: r.size, maxRssKiB: maxRssKiB() }),
        (err: unknown) => send({ type: 'done', what: `resource failed: ${String(err)}`, count: 0, bytes: 0 }),
      );
    });
    await session.start();
    process.on('message', (m: ParentMsg) => m.type === 'quit' && void session.close().finally(() => process.exit(0)));
    send({ type: 'ready', sessionPort: session.listenPort, rawPort: 0 });
    return;
  }
  const server = tls.createServer(tlsServerOptions(), (sock: TLSSocket) => {
    sock.once('readable', () => {
      const head = sock.read(8) as Buffer | null;
      if (!head) return;
      const size = Number(head.readBigUInt64BE(0));
      const hash = createHash('sha256');
      let bytes = 0;
      const out = createWriteStream(join(dir, 'raw.bin'));
      sock.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
        if (!out.write(c)) {
          sock.pause();
          out.once('drain', () => sock.resume());
        }
        if (bytes === size) {
          out.end(() => {
            sock.end(hash.digest());
            send({ type: 'done', what: 'resource', count: 1, bytes, maxRssKiB: maxRssKiB() });
          });
        }
      });
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('message', (m: ParentMsg) => m.type === 'quit' && process.exit(0));
  send({ type: 'ready', sessionPort: 0, rawPort: (server.address() as AddressInfo).port });
}
