/**
 * The names `peerlink chat` shows for peers. Display names are chosen by the peers and need
 * not be unique, so when two peers seen in one chat share a name (or a peer has ours), each of
 * them is shown with a short suffix taken from its peer id: `Alice (6f1c)`. The suffix is
 * stable — it comes from the id, not from the order of arrival — and once a peer has one it
 * keeps it for the rest of the chat, so earlier lines and later lines name it alike.
 */
import type { PeerID } from '../session/index.js';

/** A label that changed because a newcomer took the same name. */
export interface Relabel {
  peer: PeerID;
  from: string;
  to: string;
}

/** Hex digits of the id used for a suffix: 4, or more in the rare case two ids share them. */
const SUFFIX_STEP = 4;

export class ChatNames {
  readonly #self: PeerID;
  /** Every peer seen in this chat, by id (the latest name it gave). */
  readonly #seen = new Map<string, PeerID>();
  /** Ids shown with a suffix (sticky). */
  readonly #suffixed = new Set<string>();

  constructor(self: PeerID) {
    this.#self = self;
  }

  /** Records a peer; returns the other peers whose labels changed because of it. */
  add(peer: PeerID): Relabel[] {
    const same = (): PeerID[] => [...this.#seen.values()].filter((p) => p.displayName === peer.displayName);
    const before = new Map(same().map((p) => [p.id, this.label(p)]));
    this.#seen.set(peer.id, peer);
    const group = same();
    if (group.length > 1 || peer.displayName === this.#self.displayName) for (const p of group) this.#suffixed.add(p.id);
    const changed: Relabel[] = [];
    for (const p of group) {
      const from = before.get(p.id);
      const to = this.label(p);
      if (from !== undefined && from !== to) changed.push({ peer: p, from, to });
    }
    return changed;
  }

  /** The name to show for `peer` (recorded first if it is new). */
  label(peer: PeerID): string {
    if (!this.#seen.has(peer.id)) this.add(peer);
    if (!this.#suffixed.has(peer.id)) return peer.displayName;
    return `${peer.displayName} (${this.#suffix(peer)})`;
  }

  #suffix(peer: PeerID): string {
    const hex = (p: PeerID): string => p.id.replace(/-/g, '');
    const mine = hex(peer);
    const others = [...this.#seen.values(), this.#self].filter((p) => p.id !== peer.id && p.displayName === peer.displayName).map(hex);
    let n = SUFFIX_STEP;
    while (n < mine.length && others.some((o) => o.startsWith(mine.slice(0, n)))) n += SUFFIX_STEP;
    return mine.slice(0, n);
  }
}
