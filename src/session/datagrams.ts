/**
 * Best-effort messages (MC's `.unreliable`): one UDP flow per peer, negotiated on the control
 * channel (the seed's "request a parallel best-effort connection"), opened on the first
 * unreliable send and closed with the control connection it was negotiated on.
 *
 *   requester                                     responder
 *   bind UDP on the control connection's local address
 *   DATAGRAM_OPEN {token, port}  ───────────────▶ bind, connect to (control remote address, port)
 *                                ◀─────────────── DATAGRAM_ACCEPT {token, port} (0 = refused)
 *   connect to (control remote address, port)
 *   PROBE datagrams both ways until each side knows its datagrams arrive (datagram-flow.ts)
 *
 * A simultaneous OPEN from both sides is settled like duplicate connections (dedup.ts): the
 * request of the peer with the larger id wins; the other side answers it with the socket it
 * had bound for its own request, and the winner ignores the loser's OPEN (the control channel
 * is in order, so the loser's OPEN arrives before its ACCEPT). Keys: datagram-seal.ts.
 */
import { randomBytes } from 'node:crypto';
import { PeerlinkError } from '../errors.js';
import { Endpoint } from '../net/index.js';
import { maxDatagramFor } from '../net/udp-channel.js';
import type { BudgetLedger } from './budgets.js';
import type { ControlChannel } from './control-channel.js';
import { DatagramFlow, emptyTotals, type DatagramFlowStats, type DatagramTotals } from './datagram-flow.js';
import { EXPORTER_BYTES, EXPORTER_LABEL, overhead, splitKeys, type FlowKeys } from './datagram-seal.js';
import type { PeerRecord } from './peer-record.js';
import { Capability } from './protocol/messages.js';
import { decodeDatagramControl, encodeDatagramControl, type DatagramControl } from './protocol/datagram-messages.js';
import type { DatagramOptions } from './options.js';
import { datagramChannel, log } from './diagnostics.js';

/** Sends held while a flow is being set up; more are dropped (and counted). */
const WAITING_LIMIT = 256;

export interface DatagramHost {
  options: Required<DatagramOptions>;
  /** The session's control channels are TLS: datagrams are sealed. */
  secured: boolean;
  budgets: BudgetLedger;
  localId: Buffer;
  /** Our peer id as text, for diagnostics. */
  sessionId: string;
  deliver(payload: Buffer, rec: PeerRecord): void;
  now(): number;
}

const ONE: Promise<number> = Promise.resolve(1);

export class DatagramManager {
  readonly #host: DatagramHost;
  /** The flow of each control channel (one per peer: its active channel). */
  readonly #flows = new Map<ControlChannel, DatagramFlow>();
  readonly totals: DatagramTotals = emptyTotals();

  constructor(host: DatagramHost) {
    this.#host = host;
  }

  /** HELLO capability bits we offer. */
  get capability(): number {
    return this.#host.options.enabled ? Capability.DATAGRAMS : 0;
  }

  /** Largest unreliable payload to the peer of `rec` (0: none possible). */
  maximumSize(rec: PeerRecord): number {
    const ch = rec.active;
    if (!ch || ch.closed) return 0;
    const flow = this.#flows.get(ch);
    if (flow && flow.state !== 'failed' && flow.state !== 'closed') return flow.maximumDatagramSize;
    return sizeFor(ch, this.#host.secured);
  }

  stats(rec: PeerRecord): DatagramFlowStats | undefined {
    const ch = rec.active;
    return ch ? this.#flows.get(ch)?.stats : undefined;
  }

  /** One unreliable send to one peer: resolves 1 once handed to the socket (or dropped on our side, counted). */
  send(rec: PeerRecord, payload: Buffer): Promise<number> {
    const ch = rec.active;
    if (!ch || ch.closed) return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${rec.peer.displayName} is not connected`));
    let flow = this.#flows.get(ch);
    if (flow?.state === 'open') {
      if (payload.length > flow.maximumDatagramSize) return Promise.reject(tooLarge(payload.length, flow.maximumDatagramSize));
      // Not viable (its path went away, docs/session.md "Viability"): stale by the time it
      // could go out, so dropped and counted, never held.
      if (rec.viability?.viable === false) flow.countSendDropped();
      else flow.send(payload);
      return ONE;
    }
    if (!this.#host.options.enabled) return Promise.reject(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', 'datagrams are disabled in this session (the datagrams option)'));
    if (((ch.hello?.capabilities ?? 0) & Capability.DATAGRAMS) === 0) {
      return Promise.reject(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', `${rec.peer.displayName} does not accept datagrams (no DATAGRAMS capability in its HELLO): send it reliably instead`));
    }
    const max = this.maximumSize(rec);
    if (payload.length > max) return Promise.reject(tooLarge(payload.length, max));
    if (flow?.state === 'failed') {
      if (this.#host.now() - flow.failedAt < this.#host.options.retryAfter) return Promise.reject(flow.failure as PeerlinkError);
      flow = undefined;
    }
    if (flow === undefined || flow.state === 'closed') flow = this.#request(rec, ch);
    if (flow.waiting >= WAITING_LIMIT) {
      flow.countSendDropped();
      return ONE;
    }
    const f = flow;
    f.waiting++;
    return f.ready.then(
      () => {
        f.waiting--;
        f.send(payload);
        return 1;
      },
      (err: unknown) => {
        f.waiting--;
        throw err;
      },
    );
  }

  /** A control message in the extension range from the peer of `rec` on its active channel `ch`. */
  onControl(rec: PeerRecord, ch: ControlChannel, code: number, body: Buffer): boolean {
    const m = decodeDatagramControl(code, body);
    if (m === undefined) return false;
    switch (m.type) {
      case 'open':
        this.#onOpen(rec, ch, m.token, m.port);
        break;
      case 'accept': {
        const flow = this.#flows.get(ch);
        if (!flow || flow.role !== 'requester' || !flow.token.equals(m.token) || flow.state !== 'requested') break;
        if (m.port === 0) flow.fail(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', `${rec.peer.displayName} refused the datagram flow`));
        else this.#start(flow, ch, m.port);
        break;
      }
      case 'close': {
        const flow = this.#flows.get(ch);
        if (flow?.token.equals(m.token)) flow.fail(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', `${rec.peer.displayName} gave up on the datagram flow: no datagram got through within its open timeout (UDP blocked on the path?)`));
        break;
      }
    }
    return true;
  }

  /** Closes every flow (session close). */
  close(): void {
    for (const f of this.#flows.values()) f.close();
    this.#flows.clear();
  }

  #request(rec: PeerRecord, ch: ControlChannel): DatagramFlow {
    const flow = this.#newFlow(rec, ch, 'requester', randomBytes(16));
    void flow.bound().then((port) => {
      // A simultaneous OPEN from the peer may have made us the responder meanwhile (#onOpen).
      if (flow.role === 'requester' && flow.state === 'requested' && this.#flows.get(ch) === flow) this.#control(ch, { type: 'open', token: flow.token, port });
    }, () => undefined);
    return flow;
  }

  #onOpen(rec: PeerRecord, ch: ControlChannel, token: Buffer, port: number): void {
    if (!this.#host.options.enabled) return this.#control(ch, { type: 'accept', token, port: 0 });
    let flow = this.#flows.get(ch);
    if (flow?.state === 'requested' && flow.role === 'requester') {
      // Both asked at once: the larger id's request wins.
      if (Buffer.compare(this.#host.localId, rec.peer.toBytes()) > 0) return;
      flow.role = 'responder';
      flow.token = token;
    } else {
      flow?.close();
      flow = this.#newFlow(rec, ch, 'responder', token);
    }
    const f = flow;
    void f.bound().then((localPort) => {
      if (this.#flows.get(ch) !== f || f.state !== 'requested') return;
      this.#control(ch, { type: 'accept', token, port: localPort });
      this.#start(f, ch, port);
    }, () => {
      if (this.#flows.get(ch) === f) this.#control(ch, { type: 'accept', token, port: 0 });
    });
  }

  #start(flow: DatagramFlow, ch: ControlChannel, remotePort: number): void {
    let keys: FlowKeys | undefined;
    if (this.#host.secured) {
      try {
        keys = splitKeys(ch.connection.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, flow.token), ch.direction === 'outgoing');
      } catch (err) {
        flow.fail(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', 'cannot derive datagram keys from the control connection (no TLS session)', { cause: err }));
        return;
      }
    }
    const remote = ch.connection.currentPath?.remoteEndpoint;
    if (!remote) return flow.fail(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', 'the control connection has no remote address'));
    flow.start(hostOf(remote), remotePort, keys);
  }

  #newFlow(rec: PeerRecord, ch: ControlChannel, role: 'requester' | 'responder', token: Buffer): DatagramFlow {
    const local = ch.connection.currentPath?.localEndpoint;
    const remote = ch.connection.currentPath?.remoteEndpoint;
    const host = this.#host;
    const flow = new DatagramFlow(
      {
        budgets: host.budgets,
        peerKey: rec.key,
        address: remote ? Endpoint.format(remote) : '',
        totals: this.totals,
        deliver: (payload) => {
          if (rec.active === ch) host.deliver(payload, rec);
        },
        failed: (f) => {
          if (!ch.closed && this.#flows.get(ch) === f) this.#control(ch, { type: 'close', token: f.token });
        },
        now: host.now,
        openTimeout: host.options.openTimeout,
        stateChanged: (f, reason) => {
          if (datagramChannel.hasSubscribers) datagramChannel.publish({ session: host.sessionId, peer: rec.key, state: f.state, secured: f.secured, ...(reason !== undefined ? { reason } : {}) });
          log('%s: datagram flow with %s %s%s', host.sessionId, rec.peer.displayName, f.state, reason !== undefined ? `: ${reason}` : '');
        },
      },
      { role, token, localAddress: local ? hostOf(local) : '0.0.0.0', maximumDatagramSize: sizeFor(ch, host.secured), secured: host.secured },
    );
    if (!this.#flows.has(ch)) {
      // First flow on this channel: it (and any later one) ends with the channel.
      ch.once('closed', () => {
        this.#flows.get(ch)?.close();
        this.#flows.delete(ch);
      });
    }
    this.#flows.set(ch, flow);
    return flow;
  }

  /** OPEN and CLOSE are ours to send; ACCEPT answers the peer's request, so it goes through the bounded reply queue. */
  #control(ch: ControlChannel, m: DatagramControl): void {
    const { code, body } = encodeDatagramControl(m);
    if (m.type === 'accept') ch.reply({ type: 'extension', code, body });
    else ch.send({ type: 'extension', code, body }).catch(() => undefined);
  }
}

function tooLarge(size: number, max: number): PeerlinkError {
  return new PeerlinkError('ERR_DATAGRAM_TOO_LARGE', `a ${size}-byte unreliable message does not fit one datagram to this peer (at most ${max} bytes: path MTU − IP/UDP headers − the seal); send it reliably or split it`);
}

/** Largest payload on the control connection's path: its interface MTU − IP/UDP headers − our header and seal. */
function sizeFor(ch: ControlChannel, secured: boolean): number {
  const p = ch.connection.currentPath;
  if (!p) return 0;
  return maxDatagramFor(hostOf(p.localEndpoint), overhead(secured), hostOf(p.remoteEndpoint));
}

/** The address to bind / connect to: an IPv6 link-local one with its scope. */
function hostOf(e: { host: string; interface?: string }): string {
  return e.interface !== undefined && e.host.toLowerCase().startsWith('fe80') && !e.host.includes('%') ? `${e.host}%${e.interface}` : e.host;
}
