/**
 * The session's TXT record: what we advertise and how a browse result is read.
 *
 * Keys: `v` protocol version, `sec` security mode, `arch` architecture + role
 * (`star`, `server`, `client`), `id` our peer id (only with includePeerIdInTxt), plus the
 * app's discoveryInfo keys. TXT is a hint that saves dials (incompatible peers, peers we
 * are already connected to); nothing depends on it for correctness — HELLO is checked again.
 */
import { PROTOCOL_VERSION, type HelloRole } from './protocol/messages.js';
import type { ResolvedSessionOptions } from './options.js';
import { RESERVED_TXT_KEYS } from './options.js';

export interface DiscoveredPeer {
  /** Bonjour instance name. */
  instanceName: string;
  /** The raw TXT record. */
  txt: Record<string, string | true>;
  /** The app's keys from the TXT record (MC's discoveryInfo). */
  discoveryInfo: Record<string, string>;
  /** The peer id, when the peer advertises it (includePeerIdInTxt) or we have met it. */
  peerId?: string;
  /** False when the TXT says the peer cannot talk to us (other version, security or architecture). */
  compatible: boolean;
  /** Why not, when not compatible. */
  incompatibleReason?: string;
  /** Interfaces it was seen on. */
  interfaces: string[];
}

function archValue(o: Pick<ResolvedSessionOptions, 'architecture' | 'role'>): string {
  return o.architecture === 'star' ? 'star' : o.role;
}

export function buildTxt(o: ResolvedSessionOptions): Record<string, string> {
  const txt: Record<string, string> = { v: String(PROTOCOL_VERSION), sec: o.security.mode, arch: archValue(o) };
  if (o.includePeerIdInTxt) txt.id = o.peerId.id;
  for (const [k, v] of Object.entries(o.discoveryInfo)) txt[k] = v;
  return txt;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a browse result's TXT against our options. */
export function readTxt(
  instanceName: string,
  txt: Record<string, string | true>,
  interfaces: string[],
  o: Pick<ResolvedSessionOptions, 'architecture' | 'role' | 'security'>,
): DiscoveredPeer {
  const discoveryInfo: Record<string, string> = {};
  for (const [k, v] of Object.entries(txt)) if (!RESERVED_TXT_KEYS.has(k.toLowerCase())) discoveryInfo[k] = v === true ? '' : v;
  const out: DiscoveredPeer = { instanceName, txt, discoveryInfo, compatible: true, interfaces };
  const id = txt.id;
  if (typeof id === 'string' && UUID_RE.test(id)) out.peerId = id.toLowerCase();
  const v = txt.v;
  const sec = txt.sec;
  const arch = txt.arch;
  let why: string | undefined;
  // Missing keys are tolerated (another implementation may advertise less); present ones must match.
  if (typeof v === 'string' && v !== '' && Number(v) < 1) why = `protocol version ${v}`;
  else if (typeof sec === 'string' && sec !== o.security.mode) why = `security "${sec}" (ours is "${o.security.mode}")`;
  else if (typeof arch === 'string') {
    const wanted: HelloRole | 'star' = o.architecture === 'star' ? 'star' : o.role === 'client' ? 'server' : 'client';
    if (arch !== wanted) why = `architecture "${arch}" (we need "${wanted}")`;
  }
  if (why) {
    out.compatible = false;
    out.incompatibleReason = why;
  }
  return out;
}
