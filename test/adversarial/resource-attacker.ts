/**
 * The raw resource attacker shared by resources.test.ts, resource-resume.test.ts and
 * resource-folders.test.ts: STREAM_OFFER (kind 1, resource) on the attacker's control
 * connection, then a stream connection with STREAM_BIND, then resource frames written by hand
 * as docs/resources.md lays them out (u32 big-endian length + UTF-8 JSON; the body raw), each
 * carried in the stream's framed messages (docs/session.md). Nothing here uses the session's
 * own codec.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { frame, rawConnect, streamBind, streamOffer, FrameReader, type Victim } from './harness.js';
import { until } from '../harness/proc.js';

/** A resource control frame by hand: u32 BE length, then the JSON. */
export function resourceFrame(o: Record<string, unknown>): Buffer {
  const json = Buffer.from(JSON.stringify(o), 'utf8');
  const h = Buffer.alloc(4);
  h.writeUInt32BE(json.length);
  return Buffer.concat([h, json]);
}

export interface RawStream {
  socket: Socket;
  /** Resource frames the victim sent on this stream so far. */
  frames(): Array<Record<string, unknown>>;
  /** Stream bytes, in framed messages of at most `maxMessage` bytes each. */
  write(bytes: Buffer): void;
}

export interface RawStreamOptions {
  /** The largest framed message `write` sends; larger writes are split (default: never split). */
  maxMessage?: number;
  /** Whether an empty `write` sends nothing rather than one empty message (default false). */
  skipEmpty?: boolean;
}

/** Offers a resource stream on the control connection and binds a new connection to it. */
export async function openResourceStream(
  v: Victim,
  peer: { socket: Socket; peerId: Buffer },
  opts: RawStreamOptions = {},
): Promise<RawStream> {
  const max = opts.maxMessage ?? Infinity;
  const skipEmpty = opts.skipEmpty ?? false;
  const token = randomBytes(16);
  peer.socket.write(frame(streamOffer({ token, kind: 1, name: 'r' })));
  const socket = await rawConnect(v.port);
  const reader = new FrameReader(socket);
  reader.answerPings = false;
  socket.write(frame(streamBind(peer.peerId, token)));
  await until(() => reader.ofType(0x21).length > 0 || socket.destroyed, 10_000, 'STREAM_BOUND');
  assert.ok(!socket.destroyed, 'the victim bound the stream');
  const bound = reader.messages.findIndex((m) => m[0] === 0x21);
  return {
    socket,
    write: (bytes) => {
      for (let o = 0; o < bytes.length || (o === 0 && !skipEmpty); o += max) socket.write(frame(bytes.subarray(o, o + max)));
    },
    frames() {
      const bytes = Buffer.concat(reader.messages.slice(bound + 1));
      const out: Array<Record<string, unknown>> = [];
      let o = 0;
      while (o + 4 <= bytes.length) {
        const len = bytes.readUInt32BE(o);
        if (o + 4 + len > bytes.length) break;
        out.push(JSON.parse(bytes.subarray(o + 4, o + 4 + len).toString('utf8')) as Record<string, unknown>);
        o += 4 + len;
      }
      return out;
    },
  };
}
