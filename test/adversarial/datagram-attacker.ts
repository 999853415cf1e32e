/**
 * A datagram attacker written from raw sockets and hand-built bytes (docs/session.md
 * "Datagrams"), deliberately not the session's own code: a control connection (plain TCP, or
 * TLS-PSK from node:tls) that completes the handshake with hand-built frames, asks the victim
 * for a datagram flow with a hand-built DATAGRAM_OPEN, and seals datagrams itself with
 * node:crypto from the TLS exporter.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createCipheriv, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { FrameReader, frame, hello, idBytes, rawConnect, smallerId, welcome, type HelloFields, type Victim } from './harness.js';

/** HELLO capabilities: streams, resources, datagrams (bit 2). */
export const WITH_DATAGRAMS = 0b111;
const LABEL = 'EXPERIMENTAL-peerlink-datagrams-v1';

export interface DatagramAttacker {
  socket: Socket;
  reader: FrameReader;
  udp: UdpSocket;
  token: Buffer;
  /** The victim's UDP port (from its DATAGRAM_ACCEPT). */
  victimPort: number;
  /** Our send key and IV (TLS client → server), when the control connection is TLS. */
  key?: { key: Buffer; iv: Buffer };
  close(): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Connects, says HELLO (with the DATAGRAMS capability) and completes the handshake; TLS-PSK when `psk` is given. */
async function handshake(v: Victim, psk: Buffer | undefined, fields: HelloFields): Promise<{ socket: Socket; reader: FrameReader }> {
  let socket: Socket;
  if (psk) {
    socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: v.port,
        minVersion: 'TLSv1.2',
        ciphers: 'TLS_AES_128_GCM_SHA256:PSK-AES128-GCM-SHA256',
        pskCallback: () => ({ psk, identity: 'peerlink' }),
        checkServerIdentity: () => undefined,
      });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => undefined);
  } else socket = await rawConnect(v.port);
  const reader = new FrameReader(socket);
  const peerId = fields.peerId ?? smallerId(v.id);
  socket.write(frame(hello({ capabilities: WITH_DATAGRAMS, ...fields, peerId })));
  const deadline = Date.now() + 10_000;
  while (reader.ofType(0x01).length === 0) {
    if (Date.now() > deadline || socket.destroyed) throw new Error('no HELLO from the victim');
    await sleep(10);
  }
  if (Buffer.compare(peerId, idBytes(v.id)) > 0) socket.write(frame(welcome(7)));
  else {
    while (reader.ofType(0x02).length === 0) {
      if (Date.now() > deadline || socket.destroyed) throw new Error('no WELCOME from the victim');
      await sleep(10);
    }
  }
  return { socket, reader };
}

/** DATAGRAM_OPEN (0x60): token, UDP port. */
export function datagramOpen(token: Buffer, port: number): Buffer {
  const b = Buffer.alloc(19);
  b[0] = 0x60;
  token.copy(b, 1);
  b.writeUInt16BE(port, 17);
  return b;
}

/**
 * A control connection and a datagram flow with the victim: DATAGRAM_OPEN from our UDP socket's
 * port, the victim's DATAGRAM_ACCEPT read for its port.
 */
export async function openFlow(v: Victim, psk?: Buffer, fields: HelloFields = {}): Promise<DatagramAttacker> {
  const { socket, reader } = await handshake(v, psk, fields);
  const udp = createSocket('udp4');
  udp.on('error', () => undefined);
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  const token = randomBytes(16);
  socket.write(frame(datagramOpen(token, udp.address().port)));
  const deadline = Date.now() + 10_000;
  let accept: Buffer | undefined;
  while (!(accept = reader.ofType(0x61).find((m) => m.subarray(1, 17).equals(token)))) {
    if (Date.now() > deadline || socket.destroyed) throw new Error('no DATAGRAM_ACCEPT from the victim');
    await sleep(10);
  }
  const victimPort = accept.readUInt16BE(17);
  if (victimPort === 0) throw new Error('the victim refused the flow');
  await new Promise<void>((r) => udp.connect(victimPort, '127.0.0.1', r));
  const out: DatagramAttacker = {
    socket,
    reader,
    udp,
    token,
    victimPort,
    close: () => {
      socket.destroy();
      try {
        udp.close();
      } catch {
        /* closed */
      }
    },
  };
  if (psk) {
    // RFC 5705 exporter; we dialled, so we are the TLS client: the first key and IV are ours.
    const m = (socket as TLSSocket).exportKeyingMaterial(88, LABEL, token);
    out.key = { key: m.subarray(0, 32), iv: m.subarray(32, 44) };
  }
  return out;
}

/**
 * One datagram by hand: kind (1 data, 2 probe) | tag = token[0..8] | u64 seq | payload | GCM tag
 * (nonce = IV XOR seq; the 17-byte header is the additional data).
 */
export function datagram(a: { token: Buffer; key?: { key: Buffer; iv: Buffer } }, seq: number, payload: Buffer | string, kind = 1): Buffer {
  const header = Buffer.alloc(17);
  header[0] = kind;
  a.token.copy(header, 1, 0, 8);
  header.writeBigUInt64BE(BigInt(seq), 9);
  const body = Buffer.from(payload);
  if (!a.key) return Buffer.concat([header, body]);
  const nonce = Buffer.from(a.key.iv);
  const x = nonce.readBigUInt64BE(4) ^ BigInt(seq);
  nonce.writeBigUInt64BE(x, 4);
  const c = createCipheriv('aes-256-gcm', a.key.key, nonce);
  c.setAAD(header);
  const ct = c.update(body);
  c.final();
  return Buffer.concat([header, ct, c.getAuthTag()]);
}

export function sendUdp(s: UdpSocket, d: Buffer): Promise<void> {
  return new Promise((resolve, reject) => s.send(d, (err) => (err ? reject(err) : resolve())));
}
