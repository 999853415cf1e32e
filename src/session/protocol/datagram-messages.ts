/**
 * Control messages of the best-effort channel, in the extension range reserved for datagrams
 * (0x60–0x6f of messages.ts's 0x60–0x7f). Sent only to a peer whose HELLO has the DATAGRAMS
 * capability. Layouts (docs/session.md "Datagrams"):
 *
 *   DATAGRAM_OPEN   0x60  token (16) | udp port u16    "open a flow; my socket is at port"
 *   DATAGRAM_ACCEPT 0x61  token (16) | udp port u16    "opened; mine is at port" (0 = refused)
 *   DATAGRAM_CLOSE  0x62  token (16)                   "this flow is over"
 */
import { PeerlinkError } from '../../errors.js';

export const DatagramMessageType = {
  OPEN: 0x60,
  ACCEPT: 0x61,
  CLOSE: 0x62,
} as const;

export type DatagramControl =
  | { type: 'open'; token: Buffer; port: number }
  | { type: 'accept'; token: Buffer; port: number }
  | { type: 'close'; token: Buffer };

export function encodeDatagramControl(m: DatagramControl): { code: number; body: Buffer } {
  if (m.token.length !== 16) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'datagram flow token must be 16 bytes');
  if (m.type === 'close') return { code: DatagramMessageType.CLOSE, body: Buffer.from(m.token) };
  const body = Buffer.allocUnsafe(18);
  m.token.copy(body, 0);
  body.writeUInt16BE(m.port, 16);
  return { code: m.type === 'open' ? DatagramMessageType.OPEN : DatagramMessageType.ACCEPT, body };
}

/** Decodes a datagram control message; undefined for another extension code; throws ERR_MALFORMED_FRAME on a bad body. */
export function decodeDatagramControl(code: number, body: Buffer): DatagramControl | undefined {
  const bad = (what: string): PeerlinkError => new PeerlinkError('ERR_MALFORMED_FRAME', `malformed session message: ${what}`);
  switch (code) {
    case DatagramMessageType.OPEN:
    case DatagramMessageType.ACCEPT: {
      const name = code === DatagramMessageType.OPEN ? 'DATAGRAM_OPEN' : 'DATAGRAM_ACCEPT';
      if (body.length !== 18) throw bad(`${name} is ${body.length + 1} bytes (expected 19)`);
      const token = Buffer.from(body.subarray(0, 16));
      const port = body.readUInt16BE(16);
      if (code === DatagramMessageType.OPEN && port === 0) throw bad('DATAGRAM_OPEN port 0');
      return { type: code === DatagramMessageType.OPEN ? 'open' : 'accept', token, port };
    }
    case DatagramMessageType.CLOSE:
      if (body.length !== 16) throw bad(`DATAGRAM_CLOSE is ${body.length + 1} bytes (expected 17)`);
      return { type: 'close', token: Buffer.from(body) };
    default:
      return undefined;
  }
}
