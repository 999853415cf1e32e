/**
 * PeerSession's typed events (Multipeer Connectivity's MCSessionDelegate and
 * MCNearbyServiceBrowserDelegate, as Node events), and emitApp, which emits them so that an
 * app listener's exception cannot escape into the session's I/O loops.
 */
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { PeerlinkError } from '../errors.js';
import type { PeerID } from './peer-id.js';
import type { PeerState } from './peer-record.js';
import type { DiscoveredPeer } from './discovery-info.js';
import type { IncomingResource } from './resource-transfer.js';
import type { RefusedOffer } from './resource-receive.js';
import type { TrustedHow, VerificationRequest } from './trust/gate.js';
import type { Invitation } from './invitations.js';
import type { LinkQuality, LinkQualityReport } from './link-quality.js';

export interface PeerErrorInfo {
  /** The peer, when it is known (it said HELLO, or TXT/an earlier connection told us). */
  peer?: PeerID;
  /** The endpoint dialled, or the remote address of an incoming connection. */
  endpoint?: string;
}

export interface PeerSessionEvents {
  /** MC's session(_:peer:didChange:). Reported once per change. */
  peer: [peer: PeerID, state: PeerState];
  /**
   * The path under a connected peer's connection went away (`false`: its interface is down,
   * gone, or lost our address) or came back (`true`), as PathMonitor saw it. While not viable
   * the peer stays connected for `viabilityGrace`; reliable sends to it are held. If the path
   * does not come back in time the peer becomes `notConnected` (no `viability` true follows).
   * Only emitted for connected peers; `peerInfo(peer).viable` is the current value.
   */
  viability: [peer: PeerID, viable: boolean];
  /**
   * MC's session(_:didReceive:fromPeer:): one message. `mode` says how it came: 'reliable'
   * (in order per peer, never lost) or 'unreliable' (a datagram: may be lost, duplicated
   * never, reordered sometimes — docs/session.md "Datagrams").
   */
  message: [data: Buffer, peer: PeerID, mode: 'reliable' | 'unreliable'];
  /** MC's didReceive stream withName: a stream the peer opened with openStream(). */
  stream: [stream: Duplex, name: string, peer: PeerID];
  /** MC's didStartReceivingResource: a resource is arriving; its `done` gives the saved file. */
  resource: [incoming: IncomingResource<PeerID>];
  /**
   * An incoming offer was refused before it was accepted — no consent (no listener, no
   * accept callback), the accept callback said no or took too long, the name is not
   * acceptable, or it does not fit the quota / free space — with the code the sender was told.
   */
  resourceRefused: [offer: RefusedOffer<PeerID>, error: PeerlinkError];
  /**
   * PKI first contact (Nearby's authentication token, Bluetooth's numeric comparison): show
   * `code` to the person, who compares it with the other side's, then `confirm()` or
   * `reject()`. Both sides must confirm. Meanwhile the peer is `connecting` (trust
   * `verifying`) for at most `budgets.verifyTimeout`. Without a listener (and without
   * `security.trustNew`) new peers are refused.
   */
  verify: [request: VerificationRequest];
  /**
   * PKI: a peer's key is trusted, just before it becomes `connected`: `known` (in the
   * known-peers store), `verified` (codes confirmed on both sides), `trustNew` (accepted
   * without a code), `changedKeyAccepted` (acceptChangedKey said yes).
   */
  trust: [peer: PeerID, info: { how: TrustedHow; fingerprint: string }];
  /**
   * MC's didReceiveInvitationFromPeer (autoConnect: false only): a peer invited us, or
   * connected uninvited. Answer with accept() / decline(); with no listener it is declined.
   */
  invitation: [invitation: Invitation];
  /** A peer of our service was found (or its TXT changed). */
  found: [info: DiscoveredPeer];
  /** A found peer's advertisement went away (its connection may live on). */
  lost: [info: DiscoveredPeer];
  /**
   * Something went wrong with one peer or endpoint — the session carries on. Codes:
   * ERR_PSK_MISMATCH (wrong key: the peer never becomes connected), ERR_TLS_HANDSHAKE,
   * ERR_PROTOCOL / ERR_MALFORMED_FRAME / ERR_MESSAGE_TOO_LARGE (bad input from the peer).
   */
  peerError: [error: PeerlinkError, info: PeerErrorInfo];
  /** start() finished: listening, advertising (probing may still be under way), browsing. */
  ready: [];
  /**
   * Our advertisement is registered under `instanceName` (the final name after any conflict
   * rename; `session.instanceName` from now on). Always after `ready`; emitted again if a later
   * conflict renames us. Never emitted with `advertise: false`.
   */
  advertised: [instanceName: string];
  /** Registered in a wide-area (unicast DNS) domain, under this name there (docs/wide-area.md). */
  advertisedWideArea: [info: { domain: string; name: string }];
  /** A wide-area registration refresh or browse failed after start (the session keeps running). */
  wideAreaError: [error: PeerlinkError];
  /**
   * The rated quality of the link to a peer changed (docs/session.md "Link quality"): after
   * the first measurement once it is connected, when conditions change (with hysteresis and
   * hold times, so it does not flap), and to 'unknown' when it disconnects.
   */
  linkQuality: [peer: PeerID, quality: LinkQuality, report: LinkQualityReport];
  /** close() finished. */
  close: [];
}

/** Emits to app listeners; an exception thrown by one surfaces as uncaught, not inside our I/O loops. */
export function emitApp<K extends keyof PeerSessionEvents>(events: EventEmitter<PeerSessionEvents>, event: K, ...args: PeerSessionEvents[K]): void {
  try {
    (events.emit as (e: K, ...a: PeerSessionEvents[K]) => boolean)(event, ...args);
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}
