// src/session: PeerSession, the Multipeer Connectivity replacement. See docs/session.md.
export { PeerSession } from './session.js';
export type { SendOptions, OpenStreamOptions, ConnectOptions, PeerInfo, StreamKindHandler } from './session.js';
export type { PeerSessionEvents, PeerErrorInfo } from './events.js';
export type { PeerSessionOptions, SessionSecurity, PkiSecurity, SessionResourceOptions, DatagramOptions } from './options.js';
export type { DatagramFlowStats, DatagramFlowState, DatagramTotals } from './datagram-flow.js';
export type { VerificationRequest, TrustPolicy, TrustedHow } from './trust/gate.js';
export { KnownPeers, type KnownPeer, type KeyStatus } from './trust/known-peers.js';
export { SessionIdentity, peerIdBytesOfSpki, fingerprintOfSpki, type PemIdentity } from './trust/identity.js';
export { defaultIdentityBase, profileDir, lockProfile, lockFreeProfile, profileHolder, type ProfileLock } from './trust/profile.js';
export type { ResourceOffer, RefusedOffer, FreeSpaceFloor } from './resource-transfer.js';
export type { PeerState } from './peer-record.js';
export type { DiscoveredPeer } from './discovery-info.js';
export { PeerID, MAX_DISPLAY_NAME_BYTES } from './peer-id.js';
export type { Architecture } from './dedup.js';
export { Invitation } from './invitations.js';
export type { InviteOptions, InvitationState } from './invitations.js';
export { NwfSession, parseNwfPeerId, nwfDropDirection } from './nwf-session.js';
export type { NwfSessionOptions, NwfSessionEvents, NwfFoundPeer } from './nwf-session.js';
