/**
 * A small unicast DNS client: one question or one UPDATE per exchange, over UDP with
 * EDNS(0) (RFC 6891) and again over TCP when the answer is truncated (RFC 7766 §5), with a
 * timeout per attempt. A UDP answer counts only when it comes from the server asked, with
 * our ID and our question (RFC 5452 §9.1); everything else is ignored. Answers are parsed
 * by the bounded mDNS codec (by default at most 9000 bytes over UDP, 65535 over TCP: limits.ts).
 */
import { randomInt } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6, type Socket } from 'node:net';
import { PeerlinkError } from '../../errors.js';
import { decodePacket } from '../codec/decode.js';
import { sameName } from '../codec/name.js';
import type { DnsPacket } from '../codec/types.js';
import { signMessage, verifyResponse, TsigError, type TsigKey } from './tsig.js';
import { encodeQuery, encodeUpdate, rcodeName, Rcode, type UpdateMessage } from './update.js';
import { DEFAULT_UNICAST_LIMITS } from './limits.js';

export interface DnsServer {
  address: string;
  port: number;
}

export interface DnsClientOptions {
  /** Per attempt (default 3000 ms). */
  timeoutMs?: number;
  /** UDP attempts before giving up (default 3; dig's too). */
  attempts?: number;
  /** EDNS(0) UDP payload size we advertise (default 1232, the DNS Flag Day 2020 value). */
  udpPayload?: number;
  /** Largest UDP answer parsed, bytes (default 9000; UnicastLimits.maxUdpAnswer). */
  maxUdpAnswer?: number;
  /** Largest TCP answer read, bytes (default and at most 65535; UnicastLimits.maxTcpAnswer). */
  maxTcpAnswer?: number;
  /** Seconds since the epoch, for TSIG (injected in tests). */
  now?: () => number;
}

export interface Exchange {
  packet: DnsPacket;
  raw: Buffer;
}


export function formatServer(s: DnsServer): string {
  return isIPv6(s.address) ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;
}

/** `ADDR`, `ADDR:PORT`, `[V6]:PORT` or bare IPv6 → server (port 53 by default). */
export function parseServer(spec: string): DnsServer {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  const v4 = /^([^:[\]]+)(?::(\d+))?$/.exec(spec);
  let address: string | undefined;
  let port = 53;
  if (v6) {
    address = v6[1];
    if (v6[2]) port = Number(v6[2]);
  } else if (v4) {
    address = v4[1];
    if (v4[2]) port = Number(v4[2]);
  } else if (isIPv6(spec)) address = spec;
  if (!address || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `not a DNS server address: "${spec}" (ADDR, ADDR:PORT or [IPV6]:PORT)`);
  return { address, port };
}

export class DnsClient {
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly udpPayload: number;
  readonly maxUdpAnswer: number;
  readonly maxTcpAnswer: number;
  readonly now: () => number;

  constructor(opts: DnsClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_UNICAST_LIMITS.queryTimeout;
    this.attempts = opts.attempts ?? DEFAULT_UNICAST_LIMITS.queryAttempts;
    this.udpPayload = opts.udpPayload ?? 1232;
    this.maxUdpAnswer = opts.maxUdpAnswer ?? DEFAULT_UNICAST_LIMITS.maxUdpAnswer;
    this.maxTcpAnswer = Math.min(opts.maxTcpAnswer ?? DEFAULT_UNICAST_LIMITS.maxTcpAnswer, 65535);
    this.now = opts.now ?? (() => Date.now() / 1000);
  }

  /** One question; NOERROR and NXDOMAIN answers are returned, other rcodes throw ERR_DNS_SERVER_FAILURE. */
  async query(server: DnsServer, name: string, qtype: number): Promise<DnsPacket> {
    const id = randomInt(0, 0x10000);
    const msg = encodeQuery(id, name, qtype, this.udpPayload);
    const { packet } = await this.exchange(server, msg, (p) => p.questions.length === 1 && sameName(p.questions[0]?.name ?? '', name) && p.questions[0]?.qtype === qtype);
    if (packet.rcode !== Rcode.NOERROR && packet.rcode !== Rcode.NXDOMAIN)
      throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `DNS server ${formatServer(server)} answered ${rcodeName(packet.rcode)} for ${name} type ${qtype}`);
    return packet;
  }

  /**
   * Sends a TSIG-signed UPDATE and checks the signed answer. Returns the rcode (NOERROR or
   * a prerequisite failure: YXDOMAIN, YXRRSET, NXDOMAIN, NXRRSET); refusals throw
   * ERR_DNS_UPDATE_REFUSED, other failures ERR_DNS_SERVER_FAILURE.
   */
  async update(server: DnsServer, u: Omit<UpdateMessage, 'id'>, key: TsigKey | undefined): Promise<number> {
    const id = randomInt(0, 0x10000);
    const unsigned = encodeUpdate({ ...u, id });
    const signed = key ? signMessage(unsigned, key, { now: this.now() }) : undefined;
    const msg = signed?.message ?? unsigned;
    const zone = u.zone;
    const where = `DNS server ${formatServer(server)}`;
    const keyName = key ? `key "${key.name}"` : 'no key';
    // A signed request is answered with a TSIG (RFC 8945 §5.3): an answer whose TSIG does not
    // verify is ignored like one with a wrong ID, so a spoofed answer cannot decide the
    // outcome. An unsigned REFUSED / NOTAUTH is remembered to explain a timeout.
    let unsignedRefusal: number | undefined;
    let tsigError = 0;
    const accept = (p: DnsPacket, raw: Buffer): boolean => {
      if (p.opcode !== 5 || (p.questions.length > 0 && !sameName(p.questions[0]?.name ?? '', zone))) return false;
      if (!key || !signed) return true;
      try {
        tsigError = verifyResponse(raw, key, signed.mac, { now: this.now() }).error;
        return true;
      } catch {
        if (p.rcode === Rcode.REFUSED || p.rcode === Rcode.NOTAUTH) unsignedRefusal = p.rcode;
        return false;
      }
    };
    let packet: DnsPacket;
    try {
      ({ packet } = await this.exchange(server, msg, accept));
    } catch (err) {
      if (unsignedRefusal !== undefined)
        throw new PeerlinkError('ERR_DNS_UPDATE_REFUSED', `${where} refused the update of zone ${zone} signed with ${keyName} (${rcodeName(unsignedRefusal)}, unsigned); check the key and the zone's update policy`, { cause: err });
      throw err;
    }
    if (tsigError !== 0) {
      const what = tsigError === TsigError.BADKEY ? 'BADKEY: it does not know this key name and algorithm' : tsigError === TsigError.BADSIG ? 'BADSIG: the secret is wrong' : tsigError === TsigError.BADTIME ? "BADTIME: our clock differs from the server's by more than the fudge" : `TSIG error ${tsigError}`;
      throw new PeerlinkError('ERR_DNS_UPDATE_REFUSED', `${where} refused the update of zone ${zone} signed with ${keyName} (${what})`);
    }
    switch (packet.rcode) {
      case Rcode.NOERROR:
      case Rcode.YXDOMAIN:
      case Rcode.YXRRSET:
      case Rcode.NXDOMAIN:
      case Rcode.NXRRSET:
        return packet.rcode;
      case Rcode.REFUSED:
      case Rcode.NOTAUTH:
        throw new PeerlinkError('ERR_DNS_UPDATE_REFUSED', `${where} refused the update of zone ${zone} (${rcodeName(packet.rcode)}, ${keyName}); give the zone's TSIG key (--tsig-file) and check its update policy`);
      default:
        throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `${where} answered ${rcodeName(packet.rcode)} to the update of zone ${zone}`);
    }
  }

  /** UDP first (TCP when the message is too large for it), TCP again when the answer is truncated. */
  async exchange(server: DnsServer, msg: Buffer, matches: (p: DnsPacket, raw: Buffer) => boolean): Promise<Exchange> {
    const id = msg.readUInt16BE(0);
    const check = (raw: Buffer, max: number): Exchange | undefined => {
      let packet: DnsPacket;
      try {
        packet = decodePacket(raw, max);
      } catch {
        return undefined;
      }
      if (!packet.response || packet.id !== id || !matches(packet, raw)) return undefined;
      return { packet, raw };
    };
    if (msg.length <= 512) {
      let lastErr: unknown;
      for (let i = 0; i < this.attempts; i++) {
        try {
          const got = await this.#udp(server, msg, (raw) => check(raw, this.maxUdpAnswer));
          if (!got.packet.truncated) return got;
          break;
        } catch (err) {
          lastErr = err;
          if (!(err instanceof PeerlinkError && err.code === 'ERR_DNS_TIMEOUT')) throw err;
        }
      }
      if (lastErr) throw lastErr;
    }
    const raw = await this.#tcp(server, msg);
    const got = check(raw, this.maxTcpAnswer);
    if (!got) throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `DNS server ${formatServer(server)} sent an answer that is malformed or does not match the question`);
    return got;
  }

  #udp(server: DnsServer, msg: Buffer, accept: (raw: Buffer) => Exchange | undefined): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const sock: UdpSocket = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
      const done = (err: Error | undefined, x?: Exchange): void => {
        clearTimeout(timer);
        sock.removeAllListeners('message');
        sock.close();
        if (err) reject(err);
        else resolve(x as Exchange);
      };
      const timer = setTimeout(() => done(new PeerlinkError('ERR_DNS_TIMEOUT', `DNS server ${formatServer(server)} did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      sock.on('error', (err) => done(new PeerlinkError('ERR_DNS_TIMEOUT', `cannot reach DNS server ${formatServer(server)}: ${err.message}`, { cause: err })));
      sock.on('message', (raw, rinfo) => {
        if (rinfo.port !== server.port || rinfo.address.replace(/^::ffff:/, '') !== server.address.replace(/^::ffff:/, '')) return;
        const x = accept(raw);
        if (x) done(undefined, x);
      });
      sock.send(msg, server.port, server.address);
    });
  }

  #tcp(server: DnsServer, msg: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock: Socket = connect({ host: server.address, port: server.port });
      const chunks: Buffer[] = [];
      let have = 0;
      const done = (err: Error | undefined, b?: Buffer): void => {
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(b as Buffer);
      };
      const timer = setTimeout(() => done(new PeerlinkError('ERR_DNS_TIMEOUT', `DNS server ${formatServer(server)} did not answer over TCP within ${this.timeoutMs} ms`)), this.timeoutMs);
      sock.on('error', (err) => done(new PeerlinkError('ERR_DNS_TIMEOUT', `cannot reach DNS server ${formatServer(server)} over TCP: ${err.message}`, { cause: err })));
      sock.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(msg.length);
        sock.write(Buffer.concat([len, msg]));
      });
      sock.on('data', (d: Buffer) => {
        chunks.push(d);
        have += d.length;
        // the 2-byte length bounds what we keep (at most maxTcpAnswer + 2 bytes)
        if (have > this.maxTcpAnswer + 2) return done(new PeerlinkError('ERR_DNS_SERVER_FAILURE', `DNS server ${formatServer(server)} sent more than one answer over TCP, or one larger than ${this.maxTcpAnswer} bytes`));
        if (have < 2) return;
        const all = Buffer.concat(chunks);
        const want = all.readUInt16BE(0);
        if (want > this.maxTcpAnswer) return done(new PeerlinkError('ERR_DNS_SERVER_FAILURE', `DNS server ${formatServer(server)} sent a TCP answer of ${want} bytes (limit ${this.maxTcpAnswer})`));
        if (all.length >= 2 + want) done(undefined, all.subarray(2, 2 + want));
      });
      sock.on('end', () => done(new PeerlinkError('ERR_DNS_SERVER_FAILURE', `DNS server ${formatServer(server)} closed the TCP connection without a complete answer`)));
    });
  }
}
