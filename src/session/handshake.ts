/**
 * Our side of the session handshake: the HELLO we send (and an invitation's INVITE after it),
 * once per control connection — early, with a dial's TLS handshake, or when the connection is
 * attached — and the deadline the handshake must meet. What a received HELLO or WELCOME means
 * is the peer table's (peer-table.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Connection } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { peerKey, type PeerID } from './peer-id.js';
import type { ControlChannel } from './control-channel.js';
import { encodeMessageBuffer } from './protocol/codec.js';
import { Capability, PROTOCOL_VERSION, type HelloMessage } from './protocol/messages.js';
import type { ResolvedSessionOptions } from './options.js';
import type { DialTarget } from './dial-target.js';
import { INVITE_CAPABILITY, INVITE_TYPE, encodeInvite } from './invitations.js';
import { INVITE_BYE_EXPIRED } from './invitation-desk.js';

/** What the HELLO says about us (PeerTableHost provides it). */
export interface HandshakeHost {
  readonly options: ResolvedSessionOptions;
  readonly peerId: PeerID;
  listenPort(): number;
  /** Our advertised name (after any rename), when known. */
  registeredName(): string | undefined;
  /** Whether resource streams are accepted (HELLO's RESOURCES capability). */
  acceptsResources(): boolean;
  /** HELLO capability bits of optional features beyond streams/resources (datagrams). */
  extraCapabilities(): number;
}

export class Handshake {
  readonly #host: HandshakeHost;
  readonly #nonce = randomBytes(16);
  /** The generation of our last connection to a peer (by peer key), 0 if none. */
  readonly #lastGeneration: (key: string) => number;
  /** Whether `ch` waits for the app's answer to an invitation (no handshake deadline meanwhile). */
  readonly #parked: (ch: ControlChannel) => boolean;
  /** Channels that sent our HELLO (an incoming one sends it once its own HELLO is accepted). */
  readonly #helloSent = new WeakSet<ControlChannel>();
  /** Dials whose HELLO was given to the Connection before it started (earlyHello). */
  readonly #earlyHello = new WeakSet<Connection>();

  constructor(host: HandshakeHost, lastGeneration: (key: string) => number, parked: (ch: ControlChannel) => boolean) {
    this.#host = host;
    this.#lastGeneration = lastGeneration;
    this.#parked = parked;
  }

  #hello(lastGeneration: number, inviting = false): HelloMessage {
    const o = this.#host.options;
    return {
      type: 'hello',
      version: PROTOCOL_VERSION,
      role: o.role,
      peerId: this.#host.peerId.toBytes(),
      nonce: this.#nonce,
      capabilities: Capability.STREAMS | Capability.DATA_BATCH | (this.#host.acceptsResources() ? Capability.RESOURCES : 0) | this.#host.extraCapabilities() | (inviting ? INVITE_CAPABILITY : 0),
      maxMessageSize: o.maxMessageSize,
      listenPort: this.#host.listenPort(),
      lastGeneration,
      displayName: this.#host.peerId.displayName,
      instanceName: o.advertise ? (this.#host.registeredName() ?? o.instanceName) : '',
    };
  }

  /** A connection we dialled: our HELLO goes first, unless it already left with the TLS handshake (early). */
  greet(ch: ControlChannel, target: DialTarget | undefined): void {
    if (this.#earlyHello.has(ch.connection)) this.#helloSent.add(ch);
    else {
      this.send(ch, target);
      // On the wire before the rest of this tick's work: the peer's answer is what connects us.
      ch.flush();
    }
  }

  /** The handshake must finish within `ms` (an invitation we sent: its timeout, then the handshake). */
  deadline(ch: ControlChannel, ms: number, inviting: boolean): void {
    const timer = setTimeout(() => {
      if (ch.phase === 'active' || ch.closed || this.#parked(ch)) return;
      if (inviting && !ch.hello) ch.close(INVITE_BYE_EXPIRED, 'invitation expired');
      else ch.destroy(new PeerlinkError('ERR_CONNECTION_TIMEOUT', 'the peer did not complete the session handshake in time'));
    }, ms);
    timer.unref();
    // Not left running after the channel closed: it would hold the channel, its connection and
    // buffers (tens of KiB each) for connectionTimeout — thousands of short connections' worth.
    ch.once('closed', () => clearTimeout(timer));
  }

  /**
   * A dial's HELLO (and INVITE), given to its Connection before it starts (sendEarly): with
   * TLS-PSK it leaves with the handshake's last flight instead of a round of event-loop work
   * after `ready` — only once the handshake has completed, so to a holder of the key, as
   * before. The same messages attach() would send first, built a handshake earlier: what
   * they carry (our id, nonce, names, the peer's last generation) cannot have changed
   * meanwhile except by a rename or the close of a connection to this peer, which a dial to a
   * connected peer never races (the dialer does not dial connected peers).
   */
  early(conn: Connection, target: DialTarget): void {
    const knownKey = target.peerKey;
    const lastGeneration = knownKey ? this.#lastGeneration(knownKey) : 0;
    const invitation = target.invitation;
    conn.sendEarly(encodeMessageBuffer(this.#hello(lastGeneration, invitation !== undefined)));
    if (invitation) conn.sendEarly(encodeMessageBuffer({ type: 'extension', code: INVITE_TYPE, body: encodeInvite(invitation.timeoutMs, invitation.context) }));
    this.#earlyHello.add(conn);
  }

  /** Sends our HELLO (and an invitation's INVITE) on `ch`, once. */
  send(ch: ControlChannel, target: DialTarget | undefined): void {
    if (this.#helloSent.has(ch) || ch.closed) return;
    this.#helloSent.add(ch);
    const knownKey = ch.hello ? peerKey(ch.hello.peerId) : target?.peerKey;
    const lastGeneration = knownKey ? this.#lastGeneration(knownKey) : 0;
    const invitation = ch.direction === 'outgoing' && !ch.hello ? target?.invitation : undefined;
    ch.send(this.#hello(lastGeneration, invitation !== undefined)).catch(() => undefined);
    if (invitation) ch.send({ type: 'extension', code: INVITE_TYPE, body: encodeInvite(invitation.timeoutMs, invitation.context) }).catch(() => undefined);
  }
}
