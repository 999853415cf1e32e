/**
 * One error class for the whole library. `code` is stable and documented in
 * docs/errors.md; `message` tells a person what went wrong and what to do.
 */
export type PeerlinkErrorCode =
  // caller input
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_INVALID_SERVICE_TYPE'
  | 'ERR_INVALID_INSTANCE_NAME'
  | 'ERR_INVALID_HOST_NAME'
  | 'ERR_INVALID_TXT'
  | 'ERR_UNKNOWN_INTERFACE'
  | 'ERR_INVALID_STATE'
  // wire input
  | 'ERR_MALFORMED_PACKET'
  | 'ERR_MALFORMED_FRAME'
  | 'ERR_MESSAGE_TOO_LARGE'
  | 'ERR_DATAGRAM_TOO_LARGE'
  | 'ERR_PROTOCOL'
  // network / lifecycle
  | 'ERR_CONNECTION_REFUSED'
  | 'ERR_CONNECTION_RESET'
  | 'ERR_CONNECTION_TIMEOUT'
  | 'ERR_KEEPALIVE_TIMEOUT'
  | 'ERR_PATH_LOST'
  | 'ERR_PEER_NOT_VIABLE'
  | 'ERR_PEER_UNREACHABLE'
  | 'ERR_NO_USABLE_INTERFACE'
  | 'ERR_ADDRESS_IN_USE'
  | 'ERR_RESOLVE_FAILED'
  | 'ERR_CANCELLED'
  | 'ERR_CLOSED'
  // security
  | 'ERR_PSK_MISMATCH'
  | 'ERR_PSK_IDENTITY_REJECTED'
  | 'ERR_TLS_HANDSHAKE'
  | 'ERR_TLS_REQUIRED'
  | 'ERR_CERT_UNTRUSTED'
  | 'ERR_CERT_PIN_MISMATCH'
  | 'ERR_CERT_HOSTNAME_MISMATCH'
  | 'ERR_CERT_REQUIRED'
  | 'ERR_PEER_ID_MISMATCH'
  | 'ERR_PEER_KEY_CHANGED'
  | 'ERR_VERIFY_REJECTED'
  | 'ERR_VERIFY_TIMEOUT'
  | 'ERR_IDENTITY_IN_USE'
  // session / resources
  | 'ERR_RESOURCE_NAME'
  | 'ERR_RESOURCE_VERIFY'
  | 'ERR_RESOURCE_QUOTA'
  | 'ERR_RESOURCE_ABORTED'
  | 'ERR_RESOURCE_SOURCE'
  | 'ERR_RESOURCE_REFUSED'
  | 'ERR_RESOURCE_BUSY'
  | 'ERR_RESOURCE_PEER_LOST'
  | 'ERR_RESOURCE_UNSUPPORTED'
  | 'ERR_PEER_NOT_CONNECTED'
  | 'ERR_INVITATION_DECLINED'
  | 'ERR_INVITATION_TIMEOUT'
  | 'ERR_DATAGRAM_UNAVAILABLE'
  | 'ERR_STREAM_REFUSED'
  | 'ERR_TIMEOUT'
  // unicast DNS-SD (wide area)
  | 'ERR_DNS_TIMEOUT'
  | 'ERR_DNS_SERVER_FAILURE'
  | 'ERR_DNS_UPDATE_REFUSED'
  | 'ERR_TSIG_BAD_KEY_FILE'
  | 'ERR_TSIG_VERIFY'
  | 'ERR_INTERNAL';

export class PeerlinkError extends Error {
  readonly code: PeerlinkErrorCode;

  constructor(code: PeerlinkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PeerlinkError';
    this.code = code;
  }
}

export function isPeerlinkError(err: unknown, code?: PeerlinkErrorCode): err is PeerlinkError {
  return err instanceof PeerlinkError && (code === undefined || err.code === code);
}
