/**
 * The invitee's side of invitations (invitations.ts has the model and the wire): incoming
 * connections of a session with `autoConnect: false` held — budgeted, with no peer record —
 * until the app answers their `invitation` event or they expire. The peer table hands a
 * connection here after its HELLO (`hold`), routes its messages here while it is held
 * (`onMessage`: the one INVITE), and takes it back when the app accepts (`join`).
 */
import type { EventEmitter } from 'node:events';
import { Endpoint } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { PeerID } from './peer-id.js';
import type { BudgetLedger } from './budgets.js';
import { toPeerlinkError, type ControlChannel } from './control-channel.js';
import type { HelloMessage, SessionMessage } from './protocol/messages.js';
import type { ResolvedSessionOptions } from './options.js';
import { emitApp, type PeerSessionEvents } from './events.js';
import { DEFAULT_INVITE_TIMEOUT, INVITE_CAPABILITY, INVITE_TYPE, InviteBye, Invitation, PendingInvitations, decodeInvite } from './invitations.js';

/** Grace the inviter gives the invitee's own expiry (its BYE EXPIRED normally arrives first). */
export const INVITE_GRACE = 2000;
export const INVITE_BYE_EXPIRED = InviteBye.EXPIRED;
/** How long a refused inviter gets to read our BYE before its connection is destroyed. */
const REFUSAL_LINGER = 1000;

export interface InvitationDeskHost {
  readonly options: ResolvedSessionOptions;
  readonly budgets: BudgetLedger;
  readonly events: EventEmitter<PeerSessionEvents>;
  closing(): boolean;
  protocolError(ch: ControlChannel, text: string): void;
  /** The app accepted: the connection goes on through the ordinary handshake. */
  join(ch: ControlChannel, hello: HelloMessage, key: string): void;
}

interface PendingInvite {
  hello: HelloMessage;
  key: string;
  release: () => void;
  timer: NodeJS.Timeout | undefined;
  /** Set once emitted (after its INVITE, or at once for an uninvited connection). */
  invitation: Invitation | undefined;
}

export class InvitationDesk {
  readonly #host: InvitationDeskHost;
  readonly #invites = new Map<ControlChannel, PendingInvite>();
  readonly #slots: PendingInvitations;
  /** accept()ed invitations waiting for their connection. */
  readonly #joining = new Map<ControlChannel, { resolve: (p: PeerID) => void; reject: (e: PeerlinkError) => void }>();

  constructor(host: InvitationDeskHost) {
    this.#host = host;
    this.#slots = new PendingInvitations(host.budgets);
  }

  /** Invitations waiting for the app's answer. */
  get size(): number {
    return this.#slots.size;
  }

  has(ch: ControlChannel): boolean {
    return this.#invites.has(ch);
  }

  /** An incoming connection asks to be let in: held (budgeted) until the app answers or it expires. */
  hold(ch: ControlChannel, hello: HelloMessage, key: string): void {
    const address = ch.connection.currentPath?.remoteEndpoint?.host ?? '';
    const release = this.#slots.take(address, key);
    if (!release) {
      refuse(ch, InviteBye.BUSY, 'too many pending invitations');
      return;
    }
    const o = this.#host.options;
    const invited = (hello.capabilities & INVITE_CAPABILITY) !== 0;
    // An invitation's INVITE follows its HELLO at once; an uninvited dialler gives up after its
    // own handshake timeout (connectionTimeout), so its invitation lasts as long.
    const pending: PendingInvite = { hello, key, release, timer: undefined, invitation: undefined };
    this.#invites.set(ch, pending);
    const wait = Math.min(o.connectionTimeout, this.#host.budgets.limits.invitationTimeout);
    this.#arm(ch, pending, wait);
    if (!invited) this.#emit(ch, pending, Buffer.alloc(0), false, wait);
  }

  /** Before the app answers, the only message an inviter may send is its one INVITE. */
  onMessage(ch: ControlChannel, m: SessionMessage): void {
    const pending = this.#invites.get(ch);
    if (!pending) return;
    if (m.type !== 'extension' || m.code !== INVITE_TYPE || pending.invitation !== undefined) {
      this.#end(ch, pending, 'withdrawn');
      return this.#host.protocolError(ch, `${m.type === 'extension' ? `message 0x${m.code.toString(16)}` : m.type} before the invitation was answered`);
    }
    const limits = this.#host.budgets.limits;
    let invite: { timeoutMs: number; context: Buffer };
    try {
      invite = decodeInvite(m.body, limits.invitationContextBytes);
    } catch (err) {
      const e = toPeerlinkError(err, 'ERR_PROTOCOL');
      if (e.code === 'ERR_MESSAGE_TOO_LARGE') this.#host.budgets.exceeded({ budget: 'invitationContextBytes', peer: pending.key, ...addressOf(ch), detail: e.message });
      this.#end(ch, pending, 'withdrawn');
      return this.#host.protocolError(ch, e.message);
    }
    const ms = Math.max(1, Math.min(invite.timeoutMs || DEFAULT_INVITE_TIMEOUT, limits.invitationTimeout));
    this.#arm(ch, pending, ms);
    this.#emit(ch, pending, invite.context, true, ms);
  }

  /** An accepted invitation's connection became the peer's: its accept() resolves. */
  joined(ch: ControlChannel, peer: PeerID): void {
    const joining = this.#joining.get(ch);
    if (!joining) return;
    this.#joining.delete(ch);
    joining.resolve(peer);
  }

  /** A connection closed: a held invitation is withdrawn, an accepted one's accept() rejects. */
  closed(ch: ControlChannel, err: PeerlinkError | undefined): void {
    const pending = this.#invites.get(ch);
    if (pending) this.#end(ch, pending, 'withdrawn');
    const joining = this.#joining.get(ch);
    if (!joining) return;
    this.#joining.delete(ch);
    joining.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the inviter went away before the connection was made', err ? { cause: err } : undefined));
  }

  #arm(ch: ControlChannel, pending: PendingInvite, ms: number): void {
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      if (this.#invites.get(ch) !== pending) return;
      this.#end(ch, pending, 'expired');
      refuse(ch, InviteBye.EXPIRED, 'invitation expired');
    }, ms);
    pending.timer.unref();
  }

  #emit(ch: ControlChannel, pending: PendingInvite, context: Buffer, invited: boolean, ms: number): void {
    const hello = pending.hello;
    const invitation = new Invitation(
      { peer: PeerID.fromBytes(hello.peerId, hello.displayName), context, invited, address: addressOf(ch).address, expiresAt: Date.now() + ms },
      {
        accept: () => this.#accept(ch, pending),
        decline: () => {
          this.#end(ch, pending, undefined);
          refuse(ch, InviteBye.DECLINED, 'invitation declined');
        },
      },
    );
    pending.invitation = invitation;
    // Nobody to ask: declined, as an offer without a `resource` listener is refused.
    if (this.#host.events.listenerCount('invitation') === 0) return invitation.decline();
    emitApp(this.#host.events, 'invitation', invitation);
  }

  #accept(ch: ControlChannel, pending: PendingInvite): Promise<PeerID> {
    this.#end(ch, pending, undefined);
    if (ch.closed || this.#host.closing()) return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the inviter went away'));
    const joined = new Promise<PeerID>((resolve, reject) => this.#joining.set(ch, { resolve, reject }));
    this.#host.join(ch, pending.hello, pending.key);
    return joined;
  }

  /** No longer pending: its budget slot and timer go (and the app is told when it ended unanswered). */
  #end(ch: ControlChannel, pending: PendingInvite, unanswered: 'expired' | 'withdrawn' | undefined): void {
    if (this.#invites.get(ch) !== pending) return;
    this.#invites.delete(ch);
    clearTimeout(pending.timer);
    pending.release();
    if (unanswered) pending.invitation?.end(unanswered);
  }
}

/**
 * BYE, then the connection is destroyed shortly after even if the inviter never reads or
 * closes its side: refused invitations must not pile up half-closed sockets.
 */
function refuse(ch: ControlChannel, reason: number, text: string): void {
  ch.close(reason, text);
  setTimeout(() => ch.connection.forceCancel(), REFUSAL_LINGER).unref();
}

/** Why an invitation we sent ended without a connection (the inviter's side). */
export function inviteFailure(err: PeerlinkError | undefined, bye: { reason: number; text: string } | undefined): PeerlinkError {
  if (bye?.reason === InviteBye.DECLINED) return new PeerlinkError('ERR_INVITATION_DECLINED', 'the peer declined the invitation');
  if (bye?.reason === InviteBye.BUSY) return new PeerlinkError('ERR_INVITATION_DECLINED', 'the peer has too many invitations pending; try again later');
  if (bye?.reason === InviteBye.EXPIRED) return new PeerlinkError('ERR_INVITATION_TIMEOUT', 'the peer did not answer the invitation in time');
  return err ?? new PeerlinkError('ERR_PEER_NOT_CONNECTED', `the connection closed before the invitation was answered${bye ? ` (BYE ${bye.reason}${bye.text ? ` ${bye.text}` : ''})` : ''}`);
}

function addressOf(ch: ControlChannel): { address?: string } {
  const r = ch.connection.currentPath?.remoteEndpoint;
  return r ? { address: Endpoint.format(r) } : {};
}
