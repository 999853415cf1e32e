/**
 * Incoming connections before they say what they are: admitted at TCP accept against the
 * unidentified budgets, held to a first frame of `firstFrameBytes` and closed after
 * `unidentifiedTimeout`; the first message (HELLO or STREAM_BIND) hands the connection to the
 * peer table or to the streams. See docs/security.md "Before HELLO".
 */
import type { Connection } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { toPeerlinkError } from './control-channel.js';
import type { BudgetLedger } from './budgets.js';
import { decodeMessage, encodeMessageBuffer } from './protocol/codec.js';
import { ByeReason, MessageType, type HelloMessage, type SessionMessage, type StreamBindMessage } from './protocol/messages.js';
import type { PeerErrorInfo } from './events.js';
import { UnidentifiedConnections } from './unidentified.js';
import { remoteOf } from './channel-report.js';

export interface IncomingHost {
  readonly budgets: BudgetLedger;
  /** True once close() began: new connections are refused. */
  closing(): boolean;
  /** The first message was HELLO: a control connection (its limit is raised once WELCOMEd). */
  hello(conn: Connection, hello: HelloMessage): void;
  /** The first message was STREAM_BIND: a stream connection. */
  bind(conn: Connection, bind: StreamBindMessage): void;
  reportError(err: PeerlinkError, info: PeerErrorInfo): void;
}

export class IncomingConnections {
  readonly #host: IncomingHost;
  /** Incoming connections whose first message has not arrived yet. */
  readonly #unattached = new Set<Connection>();
  /** Their budgets: in total and per source address (docs/security.md "Before HELLO"). */
  readonly #unidentified: UnidentifiedConnections;

  constructor(host: IncomingHost) {
    this.#host = host;
    this.#unidentified = new UnidentifiedConnections(host.budgets);
  }

  /**
   * Admits a raw incoming TCP connection (the listener's `admit`, called before TLS or the
   * WebSocket upgrade): counted against unidentifiedConnections / unidentifiedPerAddress until it
   * becomes a peer's connection or a bound stream (`identified`), or closes. See docs/security.md
   * "Before HELLO".
   */
  admit(remoteAddress: string): (() => void) | undefined {
    if (this.#host.closing()) return undefined;
    return this.#unidentified.admit(remoteAddress);
  }

  /** Incoming connections from `address` that have not identified themselves yet (dialer.ts: a peer's dial in flight). */
  unidentifiedFrom(address: string): number {
    return this.#unidentified.from(address);
  }

  /** Session close: connections that have not sent their first message are cancelled. */
  cancelAll(): void {
    for (const c of this.#unattached) c.forceCancel();
  }

  /**
   * A connection accepted by the listener: its first message says what it is. Until then it
   * is unidentified: budgeted in number, held to a first frame of `firstFrameBytes` (the
   * listener's initialMaxMessageSize) and closed after `unidentifiedTimeout`.
   */
  onIncoming(conn: Connection): void {
    if (this.#host.closing()) {
      conn.forceCancel();
      return;
    }
    // Admission (unidentified budgets) happened at TCP accept, in the listener (admit above).
    this.#unattached.add(conn);
    const timer = setTimeout(() => conn.forceCancel(), this.#host.budgets.limits.unidentifiedTimeout);
    timer.unref();
    conn.receiveMessage().then(
      (frame) => {
        clearTimeout(timer);
        this.#unattached.delete(conn);
        if (frame === null || this.#host.closing()) return conn.forceCancel();
        // The session's own message limit only once the connection is accepted (identified(),
        // before we send WELCOME or STREAM_BOUND) or the peer's WELCOME accepts it: until then
        // a HELLO'd stranger is held to firstFrameBytes too (docs/security.md "Before HELLO").
        let msg: SessionMessage;
        try {
          msg = decodeMessage(frame, { maxDataSize: 0 });
        } catch (err) {
          this.#host.reportError(toPeerlinkError(err, 'ERR_PROTOCOL'), { endpoint: remoteOf(conn) });
          return conn.forceCancel();
        }
        if (msg.type === 'hello') {
          conn.setMaxMessageSizeAfter((m) => m[0] === MessageType.WELCOME, conn.parameters.maxMessageSize);
          this.#host.hello(conn, msg);
        }
        else if (msg.type === 'streamBind') this.#host.bind(conn, msg);
        else {
          this.#host.reportError(new PeerlinkError('ERR_PROTOCOL', `a new connection must start with HELLO or STREAM_BIND, not ${msg.type}`), { endpoint: remoteOf(conn) });
          conn.send(encodeMessageBuffer({ type: 'bye', reason: ByeReason.PROTOCOL_ERROR, text: 'expected HELLO' })).catch(() => undefined);
          conn.cancel();
        }
      },
      () => {
        clearTimeout(timer);
        this.#unattached.delete(conn);
        conn.forceCancel();
      },
    );
  }
}
