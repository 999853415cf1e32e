/**
 * The session's control-channel messages and their type bytes.
 *
 * Every message is one framed message (length-prefix framer or one WebSocket message):
 * a type byte followed by that type's fields, big-endian, with every variable-length field
 * preceded by its length. Lengths are checked against the limits below before anything is
 * read (bounded trust); see docs/session.md for the byte layouts.
 *
 * Type byte ranges (the extension point):
 *   0x01–0x1f  core control messages (this file)
 *   0x20–0x2f  stream-connection messages (the first message on a stream connection)
 *   0x40–0x5f  resources (RESOURCE_*), owned by src/session/resource*.ts
 *   0x60–0x6f  datagrams (DATAGRAM_*, protocol/datagram-messages.ts)
 *   0x70–0x77  trust (trust/messages.ts; 0x70–0x72 used)
 *   0x78–0x7f  invitations (INVITE, invitations.ts)
 *   0x80–0xff  reserved
 * A receiver ignores (and counts) a type it does not know: what a peer must understand is
 * negotiated through the HELLO `capabilities` bits first, so new optional messages never
 * break older peers.
 */

/** Protocol version this implementation speaks (HELLO `v`). */
export const PROTOCOL_VERSION = 1;

export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  BYE: 0x03,
  PING: 0x04,
  PONG: 0x05,
  DATA: 0x06,
  STREAM_OFFER: 0x07,
  STREAM_REJECT: 0x08,
  DATA_BATCH: 0x09,
  STREAM_BIND: 0x20,
  STREAM_BOUND: 0x21,
} as const;

/** Type bytes handed to a registered extension (resources, later features). */
export const EXTENSION_TYPE_MIN = 0x40;
export const EXTENSION_TYPE_MAX = 0x7f;
/** The slice of the extension range reserved for resources. */
export const RESOURCE_TYPE_MIN = 0x40;
export const RESOURCE_TYPE_MAX = 0x5f;

/** HELLO capability bits. */
export const Capability = {
  STREAMS: 1 << 0,
  RESOURCES: 1 << 1,
  /** Reserved for the best-effort (UDP) channel. */
  DATAGRAMS: 1 << 2,
  /** Understands DATA_BATCH (several app messages in one framed message). */
  DATA_BATCH: 1 << 3,
} as const;

/** What a HELLO says about the sender's place in the architecture. */
export type HelloRole = 'peer' | 'server' | 'client';

/** Limits on fields read from the wire (bounded trust). */
export const Limits = {
  /** DNS-SD instance names and display names are one 63-byte label. */
  NAME_BYTES: 63,
  /** A HELLO including any trailing extension bytes from newer versions. */
  HELLO_BYTES: 1024,
  STREAM_NAME_BYTES: 1024,
  STREAM_META_BYTES: 4096,
  BYE_TEXT_BYTES: 255,
} as const;

/**
 * Why a connection is closed (BYE `reason`). Stable numbers: they are on the wire and in
 * `peerError` events.
 */
export const ByeReason = {
  /** The peer is leaving (close()). */
  CLOSING: 0,
  /** Another connection to the same peer is kept (de-duplication). */
  DUPLICATE: 1,
  /** A newer connection replaced this one (restart, link flap, client reconnect). */
  REPLACED: 2,
  /** The peer sent something invalid. */
  PROTOCOL_ERROR: 3,
  /** No common protocol version. */
  VERSION: 4,
  /** The connection reached ourselves (our own advertisement). */
  SELF: 5,
  /** Both sides are clients, or both servers (client-server architecture). */
  ROLE: 6,
  /** The keepalive timed out. */
  TIMEOUT: 7,
  /** The token of a stream connection is unknown or expired. */
  UNKNOWN_TOKEN: 8,
  /** The stream kind is not supported or no one accepts it. */
  STREAM_REFUSED: 9,
  /** PKI: the peer's key is not trusted (id not derived from it, changed key, code rejected, not verified in time). */
  NOT_TRUSTED: 10,
} as const;
export type ByeReasonCode = (typeof ByeReason)[keyof typeof ByeReason];

export interface HelloMessage {
  type: 'hello';
  /** Highest protocol version the sender speaks. */
  version: number;
  role: HelloRole;
  /** 16-byte peer id. */
  peerId: Buffer;
  /** 16 random bytes, new for every run of the sender: a changed nonce means a restart. */
  nonce: Buffer;
  capabilities: number;
  /** Largest DATA payload the sender accepts. */
  maxMessageSize: number;
  /** TCP port of the sender's listener (for stream connections), 0 = none. */
  listenPort: number;
  /**
   * The generation (see WELCOME) of the last connection to this peer the sender saw
   * accepted and has since given up on, 0 = none. Lets the deciding side tell a
   * reconnect after a link flap (replace) from a simultaneous dial (duplicate).
   */
  lastGeneration: number;
  displayName: string;
  /** The sender's advertised DNS-SD instance name ('' when it does not advertise). */
  instanceName: string;
}

export interface WelcomeMessage {
  type: 'welcome';
  /** Per-pair sequence number assigned by the deciding side; > 0. */
  generation: number;
}

export interface ByeMessage {
  type: 'bye';
  reason: number;
  /** Human text for logs; may be empty. */
  text: string;
}

export interface PingMessage {
  type: 'ping';
  seq: number;
}

export interface PongMessage {
  type: 'pong';
  seq: number;
}

export interface DataMessage {
  type: 'data';
  payload: Buffer;
}

/** Several app messages in one framed message: each `u32 length` + payload. */
export interface DataBatchMessage {
  type: 'dataBatch';
  payloads: Buffer[];
}

export interface StreamOfferMessage {
  type: 'streamOffer';
  /** 16 random bytes; one use. */
  token: Buffer;
  /** 0 = application stream, 1 = resource, others reserved. */
  kind: number;
  /** True when the receiver of the offer must dial the sender (the opener has a listener, the receiver has none). */
  dialBack: boolean;
  name: string;
  /** Opaque bytes for the stream's kind (e.g. a resource header). */
  meta: Buffer;
}

export interface StreamRejectMessage {
  type: 'streamReject';
  token: Buffer;
  reason: number;
}

export interface StreamBindMessage {
  type: 'streamBind';
  version: number;
  /** The dialing side's peer id. */
  peerId: Buffer;
  token: Buffer;
}

export interface StreamBoundMessage {
  type: 'streamBound';
}

/** A message in the extension range, for a registered extension to decode. */
export interface ExtensionMessage {
  type: 'extension';
  code: number;
  body: Buffer;
}

/** A type byte nobody knows: ignored and counted. */
export interface UnknownMessage {
  type: 'unknown';
  code: number;
}

export type SessionMessage =
  | HelloMessage
  | WelcomeMessage
  | ByeMessage
  | PingMessage
  | PongMessage
  | DataMessage
  | DataBatchMessage
  | StreamOfferMessage
  | StreamRejectMessage
  | StreamBindMessage
  | StreamBoundMessage
  | ExtensionMessage
  | UnknownMessage;

/** Stream kinds (STREAM_OFFER `kind`). */
export const StreamKind = {
  APP: 0,
  RESOURCE: 1,
} as const;
