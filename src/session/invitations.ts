/**
 * Invitations, Multipeer Connectivity's model (invitePeer(_:to:withContext:timeout:) and
 * didReceiveInvitationFromPeer + invitationHandler), for sessions with `autoConnect: false`.
 *
 * Wire: the inviter dials, sends HELLO with the INVITE capability bit, then one INVITE message
 * (extension type 0x78: u32 timeout ms, u16 context length, context). The invitee answers only
 * when its app decides: accept → its HELLO (and WELCOME when it decides for the pair, as
 * usual); decline → BYE DECLINED; expiry (the smaller of the inviter's timeout and the
 * `invitationTimeout` budget) → BYE INVITATION_EXPIRED. A HELLO without the INVITE bit on a
 * session with `autoConnect: false` is an invitation with empty context (an uninvited
 * connection is never silently accepted). Until accepted, nothing of the peer is kept: no
 * record, no `peer` event; the connection stays unidentified (its first-frame limit holds).
 *
 * Budgets (docs/security.md "Invitations"): context bytes, pending invitations in total and
 * per source address, and the longest wait.
 */
import { EventEmitter } from 'node:events';
import { PeerlinkError } from '../errors.js';
import type { PeerID } from './peer-id.js';
import type { BudgetLedger } from './budgets.js';

/** Extension type of INVITE (0x78–0x7f are the invitations' slice of 0x60–0x7f; 0x70–0x77 trust). */
export const INVITE_TYPE = 0x78;
/** HELLO capability bit: an INVITE message follows this HELLO. */
export const INVITE_CAPABILITY = 1 << 16;
/** BYE reasons of invitations (beside protocol/messages.ts ByeReason; numbers kept apart from it). */
export const InviteBye = {
  /** The invitee's app declined. */
  DECLINED: 20,
  /** The invitation timed out (either side). */
  EXPIRED: 21,
  /** The invitee holds too many invitations (budget). */
  BUSY: 22,
} as const;
/** Multipeer's default invitation timeout (30 s). */
export const DEFAULT_INVITE_TIMEOUT = 30_000;

export interface InviteOptions {
  /** Bytes shown to the invitee with the invitation (≤ the `invitationContextBytes` budget, default 1024). */
  context?: Uint8Array | string;
  /** How long the invitee may take to answer, ms. Default 30 000 (Multipeer's). */
  timeout?: number;
  signal?: AbortSignal;
}

export function encodeInvite(timeoutMs: number, context: Buffer): Buffer {
  const b = Buffer.allocUnsafe(6 + context.length);
  b.writeUInt32BE(Math.min(timeoutMs, 0xffffffff), 0);
  b.writeUInt16BE(context.length, 4);
  context.copy(b, 6);
  return b;
}

/** INVITE's body; throws ERR_MALFORMED_FRAME on a length that does not add up or goes over `maxContext`. */
export function decodeInvite(body: Buffer, maxContext: number): { timeoutMs: number; context: Buffer } {
  if (body.length < 6) throw new PeerlinkError('ERR_MALFORMED_FRAME', `INVITE is ${body.length + 1} bytes, shorter than its header`);
  const timeoutMs = body.readUInt32BE(0);
  const n = body.readUInt16BE(4);
  if (n > maxContext) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `INVITE context of ${n} bytes exceeds invitationContextBytes ${maxContext}`);
  if (body.length !== 6 + n) throw new PeerlinkError('ERR_MALFORMED_FRAME', `INVITE context length ${n} does not match the message (${body.length - 6} bytes)`);
  return { timeoutMs, context: Buffer.from(body.subarray(6)) };
}

/** The context bytes of an invite() call, checked against the budget before anything is dialled. */
export function inviteContext(context: Uint8Array | string | undefined, max: number): Buffer {
  const b = context === undefined ? Buffer.alloc(0) : typeof context === 'string' ? Buffer.from(context, 'utf8') : Buffer.from(context);
  if (b.length > max) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `invitation context of ${b.length} bytes exceeds invitationContextBytes ${max}`);
  return b;
}

export type InvitationState = 'pending' | 'accepted' | 'declined' | 'expired' | 'withdrawn';

interface InvitationHooks {
  accept(): Promise<PeerID>;
  decline(): void;
}

export interface InvitationEvents {
  /** The invitation ended unanswered: it expired, or the inviter went away or withdrew. */
  end: [state: InvitationState];
}

/**
 * An invitation received (MC's didReceiveInvitationFromPeer). Answer it once with accept()
 * or decline(); unanswered it expires at `expiresAt`. The `signal` aborts when it ends
 * unanswered (e.g. to cancel a prompt).
 */
export class Invitation extends EventEmitter<InvitationEvents> {
  /** Who invites (as its HELLO says; with key-bound ids, who holds that key). */
  readonly peer: PeerID;
  /** The inviter's context bytes (empty for an uninvited connection). */
  readonly context: Buffer;
  /** True when the peer invited us with invite(); false for an uninvited connection (autoConnect: false). */
  readonly invited: boolean;
  /** The remote address of the connection. */
  readonly address: string | undefined;
  /** When it expires (Date.now() clock). */
  readonly expiresAt: number;
  #state: InvitationState = 'pending';
  readonly #abort = new AbortController();
  readonly #hooks: InvitationHooks;

  constructor(init: { peer: PeerID; context: Buffer; invited: boolean; address: string | undefined; expiresAt: number }, hooks: InvitationHooks) {
    super();
    this.peer = init.peer;
    this.context = init.context;
    this.invited = init.invited;
    this.address = init.address;
    this.expiresAt = init.expiresAt;
    this.#hooks = hooks;
  }

  get state(): InvitationState {
    return this.#state;
  }

  /** Aborted when the invitation ends without an answer. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Joins the inviter; resolves once connected. Rejects (ERR_INVALID_STATE) if it is no longer pending. */
  accept(): Promise<PeerID> {
    if (this.#state !== 'pending') return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', `the invitation from ${this.peer.displayName} is ${this.#state}`));
    this.#state = 'accepted';
    return this.#hooks.accept();
  }

  /** Declines: the inviter's invite() rejects with ERR_INVITATION_DECLINED; the connection closes. */
  decline(): void {
    if (this.#state !== 'pending') return;
    this.#state = 'declined';
    this.#hooks.decline();
  }

  /** @internal The session ends it unanswered. */
  end(state: 'expired' | 'withdrawn'): void {
    if (this.#state !== 'pending') return;
    this.#state = state;
    this.#abort.abort(new PeerlinkError('ERR_INVITATION_TIMEOUT', `the invitation from ${this.peer.displayName} ${state === 'expired' ? 'expired' : 'was withdrawn'}`));
    this.emit('end', state);
  }
}

/**
 * Pending incoming invitations, bounded in total and per source address. A slot is taken
 * when a HELLO asks to be invited and released when the invitation is answered or ends.
 */
export class PendingInvitations {
  readonly #budgets: BudgetLedger;
  #total = 0;
  readonly #perAddress = new Map<string, number>();

  constructor(budgets: BudgetLedger) {
    this.#budgets = budgets;
  }

  get size(): number {
    return this.#total;
  }

  /** Takes a slot for `address`; undefined (and counted) when a budget refuses. */
  take(address: string, peer: string): (() => void) | undefined {
    const limits = this.#budgets.limits;
    if (this.#total >= limits.invitationsPending) {
      this.#budgets.exceeded({ budget: 'invitationsPending', peer, address, detail: 'invitation refused' });
      return undefined;
    }
    const n = this.#perAddress.get(address) ?? 0;
    if (n >= limits.invitationsPerAddress) {
      this.#budgets.exceeded({ budget: 'invitationsPerAddress', peer, address, detail: 'invitation refused' });
      return undefined;
    }
    this.#total++;
    this.#perAddress.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const m = (this.#perAddress.get(address) ?? 1) - 1;
      if (m <= 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, m);
    };
  }
}
