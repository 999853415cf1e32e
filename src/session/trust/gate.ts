/**
 * Trust for a PKI session (docs/security.md "Trust"): the id a HELLO claims must be the one
 * derived from the key the peer presented in TLS; then, once the connection is the peer's
 * (WELCOME), it is not `connected` until both sides trust each other's key — at once for a
 * known peer, after a compared code on first contact (verify-code.ts). While a code waits for
 * a person the peer is *verifying*: its state is `connecting`, nothing it sends is delivered,
 * the handshake timer does not apply, and `verifyTimeout` (60 s) does.
 */
import type { X509Certificate } from 'node:crypto';
import { PeerlinkError, type PeerlinkErrorCode } from '../../errors.js';
import type { BudgetLedger } from '../budgets.js';
import type { ControlChannel } from '../control-channel.js';
import { ByeReason, type ExtensionMessage, type HelloMessage } from '../protocol/messages.js';
import type { PeerRecord } from '../peer-record.js';
import type { PeerID } from '../peer-id.js';
import { fingerprintOfSpki, peerIdBytesOfSpki, spkiOf, type SessionIdentity } from './identity.js';
import type { KnownPeer, KnownPeers } from './known-peers.js';
import { decodeTrust, encodeTrust, type TrustMessage } from './messages.js';
import { EXPORTER_BYTES, EXPORTER_LABEL, commitmentOf, newNonce, verificationCode } from './verify-code.js';

/** A first contact waiting for a decision (the session's `verify` event). */
export interface VerificationRequest {
  peer: PeerID;
  /** Six digits: the same on both sides unless someone is in the middle. */
  code: string;
  /** `sha256/BASE64` of the peer's public key. */
  fingerprint: string;
  /** The peer's certificate chain, leaf first. */
  chain: X509Certificate[];
  /**
   * True when this side already trusts the key (a known peer, or `trustNew`) and confirmed by
   * itself: the other side asked for the comparison, so show the code for its person to compare.
   */
  autoConfirmed: boolean;
  /** Accepts the peer's key (both sides must): it is remembered in the known-peers store. */
  confirm(): void;
  /** Refuses it: the connection closes (ERR_VERIFY_REJECTED on both sides). */
  reject(): void;
  /** Aborted when the attempt ends without this side's answer (timeout, the peer rejected or left). */
  signal: AbortSignal;
}

/** `security` for PKI sessions, as the gate uses it. */
export interface TrustPolicy {
  /** MC's certificateHandler: false refuses the peer (ERR_CERT_UNTRUSTED) before anything else. */
  verifyPeer?: ((peer: PeerID, chain: X509Certificate[]) => boolean | Promise<boolean>) | undefined;
  /** Accept (and remember) new keys without comparing a code. Default false. */
  trustNew?: boolean | undefined;
  /** A known id presents another key: true accepts (and remembers) it. Default: refused. */
  acceptChangedKey?: ((peer: PeerID, known: KnownPeer, fingerprint: string) => boolean | Promise<boolean>) | undefined;
}

/** How a peer came to be trusted (the session's `trust` event). */
export type TrustedHow = 'known' | 'verified' | 'trustNew' | 'changedKeyAccepted';

export interface TrustHost {
  identity: SessionIdentity;
  policy: TrustPolicy;
  known: KnownPeers;
  budgets: BudgetLedger;
  /** Emits the `verify` event; false when nobody listens. */
  requestVerification(req: VerificationRequest): boolean;
  reportError(err: PeerlinkError, rec: PeerRecord, ch: ControlChannel): void;
  /** Both sides trust each other: the peer becomes connected. */
  trusted(rec: PeerRecord, ch: ControlChannel, how: TrustedHow, fingerprint: string): void;
  now(): number;
}

interface Attempt {
  rec: PeerRecord;
  ch: ControlChannel;
  nonce: Buffer;
  fingerprint: string;
  chain: X509Certificate[];
  spki: Buffer;
  localNeed: boolean | undefined;
  how: TrustedHow;
  remote: { need: boolean; commitment: Buffer } | undefined;
  revealed: boolean;
  counted: boolean;
  localOk: boolean;
  remoteOk: boolean;
  /** This side answered (confirm or reject): the signal is not aborted then. */
  answered: boolean;
  abort: AbortController;
  timer: NodeJS.Timeout;
}

export class TrustGate {
  readonly #host: TrustHost;
  readonly #attempts = new Map<ControlChannel, Attempt>();
  /** Attempts comparing a code now (verifyingPeers). */
  #comparing = 0;
  /** Token bucket of verificationsPerMinute. */
  #tokens: number;
  #refilledAt: number;

  constructor(host: TrustHost) {
    this.#host = host;
    this.#tokens = host.budgets.limits.verificationsPerMinute;
    this.#refilledAt = host.now();
  }

  /** Attempts comparing a code (`verifying`), for stats. */
  get verifying(): number {
    return this.#comparing;
  }

  /**
   * The HELLO's id must be derived from the key the peer proved in TLS: anything else is
   * refused (ERR_PEER_ID_MISMATCH). Returns the error to report, or undefined.
   */
  checkHello(ch: ControlChannel, hello: HelloMessage): PeerlinkError | undefined {
    const leaf = ch.connection.peerCertificates[0];
    if (!leaf) return new PeerlinkError('ERR_CERT_REQUIRED', 'the peer presented no certificate');
    if (!peerIdBytesOfSpki(spkiOf(leaf)).equals(hello.peerId)) {
      return new PeerlinkError('ERR_PEER_ID_MISMATCH', `the peer claims an id that is not derived from its key (${fingerprintOfSpki(spkiOf(leaf))}): refused`);
    }
    return undefined;
  }

  /** `ch` just became `rec`'s connection: it is gated until both sides trust each other. */
  begin(rec: PeerRecord, ch: ControlChannel): void {
    const leaf = ch.connection.peerCertificates[0];
    const chain = ch.connection.peerCertificates;
    if (!leaf) return this.#refuse(rec, ch, new PeerlinkError('ERR_CERT_REQUIRED', 'the peer presented no certificate'));
    const spki = spkiOf(leaf);
    const nonce = newNonce();
    const attempt: Attempt = {
      rec, ch, nonce, spki, chain,
      fingerprint: fingerprintOfSpki(spki),
      localNeed: undefined, how: 'verified', remote: undefined, revealed: false, counted: false, localOk: false, remoteOk: false, answered: false,
      abort: new AbortController(),
      timer: setTimeout(() => this.#timeout(attempt), this.#host.budgets.limits.verifyTimeout),
    };
    attempt.timer.unref();
    this.#attempts.set(ch, attempt);
    rec.verifying = ch;
    ch.once('closed', (_err, bye) => this.#end(attempt, bye));
    void this.#decideLocally(attempt).then(
      (need) => {
        if (need === undefined || ch.closed) return;
        attempt.localNeed = need;
        this.#send(attempt, { kind: 'commit', need, commitment: commitmentOf(nonce) });
        this.#progress(attempt);
      },
      (err: unknown) => this.#refuse(rec, ch, err instanceof PeerlinkError ? err : new PeerlinkError('ERR_INTERNAL', String(err))),
    );
  }

  /** A trust message on `ch`. */
  onMessage(ch: ControlChannel, m: ExtensionMessage): void {
    const a = this.#attempts.get(ch);
    if (!a) return; // after the attempt settled: nothing more is expected, ignored like an unknown type
    let msg: TrustMessage;
    try {
      msg = decodeTrust(m);
    } catch (err) {
      return this.#protocol(a, (err as Error).message);
    }
    switch (msg.kind) {
      case 'commit':
        if (a.remote) return this.#protocol(a, 'a second TRUST_COMMIT');
        a.remote = { need: msg.need, commitment: msg.commitment };
        return this.#progress(a);
      case 'reveal': {
        // Only after our commitment was seen (we reveal after theirs; they after ours).
        if (!a.remote || !a.revealed) return this.#protocol(a, 'TRUST_REVEAL out of order');
        if (!commitmentOf(msg.nonce).equals(a.remote.commitment)) return this.#protocol(a, 'TRUST_REVEAL does not match its commitment');
        return this.#compare(a, msg.nonce);
      }
      case 'confirm':
        if (!a.revealed) return this.#protocol(a, 'TRUST_CONFIRM before the code');
        if (!msg.ok) {
          this.#close(a, new PeerlinkError('ERR_VERIFY_REJECTED', `${a.rec.peer.displayName} rejected the verification code`));
          return;
        }
        a.remoteOk = true;
        return this.#finishIfDone(a);
    }
  }

  /** Whether we need a code compared with this peer; undefined when it was refused. */
  async #decideLocally(a: Attempt): Promise<boolean | undefined> {
    const { policy, known } = this.#host;
    const peer = a.rec.peer;
    if (policy.verifyPeer) {
      let ok = false;
      let why = 'refused by verifyPeer';
      try {
        ok = await policy.verifyPeer(peer, a.chain);
      } catch (err) {
        why = `verifyPeer threw: ${(err as Error).message}`;
      }
      if (a.ch.closed) return undefined;
      if (!ok) {
        this.#refuse(a.rec, a.ch, new PeerlinkError('ERR_CERT_UNTRUSTED', `${peer.displayName}'s certificate was ${why.startsWith('refused') ? why : `refused: ${why}`}`));
        return undefined;
      }
    }
    const status = known.check(a.rec.key, a.fingerprint);
    if (status === 'known') {
      a.how = 'known';
      return false;
    }
    if (status === 'changed') {
      const entry = known.get(a.rec.key) as KnownPeer;
      let ok = false;
      if (policy.acceptChangedKey) {
        try {
          ok = await policy.acceptChangedKey(peer, entry, a.fingerprint);
        } catch {
          ok = false;
        }
      }
      if (a.ch.closed) return undefined;
      if (!ok) {
        this.#refuse(a.rec, a.ch, new PeerlinkError('ERR_PEER_KEY_CHANGED', `${peer.displayName} (${a.rec.key}) presents the key ${a.fingerprint}, not the ${entry.fingerprint} known for it since ${entry.firstSeen}: refused; if the peer really changed its key, forget it (peerlink trust forget ${a.rec.key}) and verify it again`));
        return undefined;
      }
      known.trust(a.rec.key, a.fingerprint, peer.displayName);
      a.how = 'changedKeyAccepted';
      return false;
    }
    if (policy.trustNew === true) {
      a.how = 'trustNew';
      return false;
    }
    return true;
  }

  /** Both commitments are out: reveal, when a code is needed; else trusted at once. */
  #progress(a: Attempt): void {
    if (a.localNeed === undefined || !a.remote || a.revealed || a.ch.closed) return;
    if (!a.localNeed && !a.remote.need) return this.#trusted(a);
    const limits = this.#host.budgets.limits;
    if (this.#comparing >= limits.verifyingPeers) {
      this.#host.budgets.exceeded({ budget: 'verifyingPeers', peer: a.rec.key, detail: 'first contact refused: too many verifications pending' });
      return this.#close(a, new PeerlinkError('ERR_VERIFY_REJECTED', `first contact with ${a.rec.peer.displayName} refused: ${limits.verifyingPeers} verifications are already pending`));
    }
    if (!this.#takeToken()) {
      this.#host.budgets.exceeded({ budget: 'verificationsPerMinute', peer: a.rec.key, detail: 'first contact refused: verification attempts rate-limited' });
      return this.#close(a, new PeerlinkError('ERR_VERIFY_REJECTED', `first contact with ${a.rec.peer.displayName} refused: more than ${limits.verificationsPerMinute} verification attempts in a minute`));
    }
    this.#comparing++;
    a.counted = true;
    a.revealed = true;
    this.#send(a, { kind: 'reveal', nonce: a.nonce });
  }

  #compare(a: Attempt, remoteNonce: Buffer): void {
    const id = this.#host.identity;
    let exporter: Buffer;
    try {
      exporter = a.ch.connection.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL);
    } catch (err) {
      return this.#refuse(a.rec, a.ch, new PeerlinkError('ERR_INTERNAL', `no TLS exporter: ${(err as Error).message}`));
    }
    const code = verificationCode({
      exporter,
      local: { id: id.idBytes, spki: id.spki, nonce: a.nonce },
      remote: { id: a.rec.peer.toBytes(), spki: a.spki, nonce: remoteNonce },
    });
    const answer = (ok: boolean): void => {
      if (a.answered || a.ch.closed || this.#attempts.get(a.ch) !== a) return;
      a.answered = true;
      if (!ok) {
        this.#send(a, { kind: 'confirm', ok: false });
        this.#close(a, new PeerlinkError('ERR_VERIFY_REJECTED', `the verification code of ${a.rec.peer.displayName} was rejected here`));
        return;
      }
      a.localOk = true;
      this.#send(a, { kind: 'confirm', ok: true });
      this.#finishIfDone(a);
    };
    // We already trust this key (known, or trustNew): the other side asked; we show the code and agree.
    const request: VerificationRequest = {
      peer: a.rec.peer,
      code,
      fingerprint: a.fingerprint,
      chain: a.chain,
      autoConfirmed: a.localNeed === false,
      confirm: () => answer(true),
      reject: () => answer(false),
      signal: a.abort.signal,
    };
    const listened = this.#host.requestVerification(request);
    if (a.localNeed === false) answer(true);
    else if (!listened) answer(false);
  }

  #finishIfDone(a: Attempt): void {
    if (a.localOk && a.remoteOk) this.#trusted(a);
  }

  #trusted(a: Attempt): void {
    const { rec, ch } = a;
    this.#settle(a);
    const known = this.#host.known;
    if (known.check(rec.key, a.fingerprint) === 'known') known.seen(rec.key, rec.peer.displayName);
    else known.trust(rec.key, a.fingerprint, rec.peer.displayName);
    if (rec.verifying === ch) rec.verifying = undefined;
    this.#host.trusted(rec, ch, a.how, a.fingerprint);
  }

  #timeout(a: Attempt): void {
    if (this.#attempts.get(a.ch) !== a) return;
    this.#close(a, new PeerlinkError('ERR_VERIFY_TIMEOUT', `${a.rec.peer.displayName} was not verified within ${this.#host.budgets.limits.verifyTimeout} ms`));
  }

  #protocol(a: Attempt, text: string): void {
    this.#settle(a);
    this.#host.reportError(new PeerlinkError('ERR_PROTOCOL', `peer broke the trust protocol: ${text}`), a.rec, a.ch);
    a.ch.close(ByeReason.PROTOCOL_ERROR, text);
  }

  #refuse(rec: PeerRecord, ch: ControlChannel, err: PeerlinkError): void {
    const a = this.#attempts.get(ch);
    if (a) this.#settle(a);
    this.#host.reportError(err, rec, ch);
    ch.close(ByeReason.NOT_TRUSTED, err.code);
  }

  #close(a: Attempt, err: PeerlinkError): void {
    this.#settle(a);
    this.#host.reportError(err, a.rec, a.ch);
    a.ch.close(ByeReason.NOT_TRUSTED, err.code);
  }

  #send(a: Attempt, m: TrustMessage): void {
    a.ch.send(encodeTrust(m)).catch(() => undefined);
  }

  /** The attempt is over (any outcome): its timer, budget slot and pending question go. */
  #settle(a: Attempt): void {
    if (this.#attempts.get(a.ch) !== a) return;
    this.#attempts.delete(a.ch);
    clearTimeout(a.timer);
    if (a.counted) this.#comparing--;
    a.counted = false;
    if (a.rec.verifying === a.ch) a.rec.verifying = undefined;
    if (!a.answered) a.abort.abort();
  }

  /** The channel closed: the attempt ends (the peer left, or someone closed it). */
  #end(a: Attempt, bye: { reason: number; text: string } | undefined): void {
    const pending = this.#attempts.get(a.ch) === a;
    this.#settle(a);
    if (!pending) return;
    if (bye?.reason === ByeReason.NOT_TRUSTED) {
      this.#host.reportError(new PeerlinkError('ERR_VERIFY_REJECTED', `${a.rec.peer.displayName} refused to trust us${bye.text ? ` (${bye.text})` : ''}`), a.rec, a.ch);
    } else if (a.revealed && !a.localOk) {
      this.#host.reportError(new PeerlinkError('ERR_VERIFY_REJECTED', `${a.rec.peer.displayName} left before the verification was settled`), a.rec, a.ch);
    }
  }

  #takeToken(): boolean {
    const per = this.#host.budgets.limits.verificationsPerMinute;
    const now = this.#host.now();
    this.#tokens = Math.min(per, this.#tokens + ((now - this.#refilledAt) * per) / 60_000);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Codes the session reports as peerError for trust refusals. */
export const TRUST_CODES: ReadonlySet<PeerlinkErrorCode> = new Set<PeerlinkErrorCode>(['ERR_PEER_ID_MISMATCH', 'ERR_PEER_KEY_CHANGED', 'ERR_VERIFY_REJECTED', 'ERR_VERIFY_TIMEOUT']);
