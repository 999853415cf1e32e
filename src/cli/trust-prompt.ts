/**
 * First contact in the CLI (`--pki`, docs/cli.md "Trust"): the session's `verify` event shown
 * to the person — the code, then `same code on the other side? [y/N]` on a terminal — and the
 * `trust` event said once per new key. Without a terminal a new key is refused unless
 * `--trust-new` (the session then accepts it by itself and this only says so).
 */
import type { PeerSession } from '../session/index.js';
import type { PeerID } from '../session/peer-id.js';
import { escapeForDisplay } from '../display-text.js';

export const VERIFY_QUESTION = 'same code on the other side? [y/N] ';

export interface TrustPromptOptions {
  /** Asks a question on the terminal (undefined: no terminal). Resolves with the answer; an aborted signal withdraws it. */
  ask: ((question: string, signal: AbortSignal) => Promise<boolean>) | undefined;
  /** A line for the person (stderr, or the chat screen). */
  log(text: string): void;
  /** With --json: one object per line. */
  json?: (obj: Record<string, unknown>) => void;
}

const name = (p: PeerID): string => escapeForDisplay(p.displayName);

export function wireTrust(session: PeerSession, o: TrustPromptOptions): void {
  session.on('verify', (req) => {
    o.json?.({ event: 'verify', peer: req.peer.displayName, id: req.peer.id, code: req.code, fingerprint: req.fingerprint, autoConfirmed: req.autoConfirmed });
    if (req.autoConfirmed) {
      if (!o.json) o.log(`peerlink: ${name(req.peer)} compares codes with us (its key is already trusted here): code ${req.code}`);
      return;
    }
    const intro = `first contact with ${name(req.peer)} (${req.peer.id}, key ${req.fingerprint}): code ${req.code}`;
    if (!o.ask) {
      o.log(`peerlink: ${intro} — refused: not a terminal; give --trust-new to accept new peers without comparing codes`);
      req.reject();
      return;
    }
    o.ask(`${intro} —`, req.signal).then(
      (ok) => (ok ? req.confirm() : req.reject()),
      () => req.reject(),
    );
  });
  session.on('trust', (peer, info) => {
    o.json?.({ event: 'trust', peer: peer.displayName, id: peer.id, how: info.how, fingerprint: info.fingerprint });
    if (o.json) return;
    if (info.how === 'trustNew') o.log(`peerlink: new peer ${name(peer)} (${peer.id}, key ${info.fingerprint}) trusted without comparing codes (--trust-new)`);
    else if (info.how === 'verified') o.log(`peerlink: ${name(peer)} verified; its key is remembered ('peerlink trust list')`);
  });
}
