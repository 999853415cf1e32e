/**
 * Maps Node / OpenSSL / ws errors to PeerlinkError codes, and says whether an error is one a
 * connection may recover from (`waiting`) or not (`failed`).
 */
import { PeerlinkError, type PeerlinkErrorCode } from '../errors.js';

/** Errors after which a connection waits and retries rather than failing. */
const RECOVERABLE = new Set<PeerlinkErrorCode>([
  'ERR_CONNECTION_REFUSED',
  'ERR_CONNECTION_TIMEOUT',
  'ERR_PEER_UNREACHABLE',
  'ERR_RESOLVE_FAILED',
  'ERR_NO_USABLE_INTERFACE',
  'ERR_CONNECTION_RESET',
]);

export function isRecoverable(err: PeerlinkError): boolean {
  return RECOVERABLE.has(err.code);
}

const PSK_MISMATCH = new Set([
  'ERR_SSL_BINDER_DOES_NOT_VERIFY',
  'ERR_SSL_SSLV3_ALERT_ILLEGAL_PARAMETER',
  'ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC',
  'ERR_SSL_SSLV3_ALERT_BAD_RECORD_MAC',
  'ERR_SSL_CIPHER_OPERATION_FAILED',
  'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
  'ERR_SSL_DECRYPT_ERROR',
  'ERR_SSL_BAD_RECORD_MAC',
]);

const CERT_UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
]);

/**
 * OpenSSL 3.2+ (Node 22 and later) names alerts "ssl/tls alert …" where 3.0 (Node 20) said
 * "sslv3 alert …", so Node's derived code changed from ERR_SSL_SSLV3_ALERT_X to
 * ERR_SSL_SSL/TLS_ALERT_X. One spelling here, so every Node line maps alike.
 */
function normalizeSslCode(code: string): string {
  return code.startsWith('ERR_SSL_SSL/TLS_ALERT_') ? 'ERR_SSL_SSLV3_ALERT_' + code.slice('ERR_SSL_SSL/TLS_ALERT_'.length) : code;
}

export type TlsMode = 'psk' | 'pki' | undefined;

/** Converts anything thrown or emitted by a socket / TLS / ws into a PeerlinkError. */
export function toPeerlinkError(err: unknown, context: { tls?: TlsMode; during?: 'connect' | 'handshake' | 'transfer'; what?: string } = {}): PeerlinkError {
  if (err instanceof PeerlinkError) return err;
  const e = err as NodeJS.ErrnoException & { reason?: string };
  const code = normalizeSslCode(e?.code ?? '');
  const what = context.what ? `${context.what}: ` : '';
  const msg = e?.message ?? String(err);
  const mk = (c: PeerlinkErrorCode, m: string): PeerlinkError => new PeerlinkError(c, `${what}${m}`, { cause: err });
  switch (code) {
    case 'ECONNREFUSED':
      return mk('ERR_CONNECTION_REFUSED', 'connection refused (is the peer listening on that port?)');
    case 'ETIMEDOUT':
      return mk('ERR_CONNECTION_TIMEOUT', 'timed out');
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'EADDRNOTAVAIL':
      return mk('ERR_PEER_UNREACHABLE', `peer unreachable (${code})`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
      return mk('ERR_RESOLVE_FAILED', `could not resolve the host name (${code})`);
    case 'ECONNRESET':
    case 'EPIPE':
      // Not a verdict on a PSK, even during its handshake: a wrong key fails with a TLS alert or
      // a record that does not verify (below). A reset is a side that gave up — a dial timeout
      // on a starved host — or went away; as a wrong key it held live pairs apart (the 30 s
      // security retry) and told the app its key was wrong.
      return mk('ERR_CONNECTION_RESET', context.during === 'handshake' && context.tls !== undefined ? 'connection reset by the peer during the TLS handshake' : 'connection reset by the peer');
    case 'EADDRINUSE':
      return mk('ERR_ADDRESS_IN_USE', 'address already in use');
    case 'EMSGSIZE':
      return mk('ERR_DATAGRAM_TOO_LARGE', 'datagram too large for the path');
    case 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM':
    case 'ERR_SSL_NO_SHARED_CIPHER':
      if (context.tls === 'psk') return mk('ERR_PSK_MISMATCH', 'TLS-PSK handshake failed: the peer has no PSK for our identity or no common cipher suite');
      break;
    case 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE':
      if (context.tls === 'psk') return mk('ERR_PSK_MISMATCH', 'TLS-PSK handshake failed: the peer does not accept our PSK identity or key');
      break;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return mk('ERR_CERT_HOSTNAME_MISMATCH', `the peer's certificate is not valid for this host name (${e.reason ?? msg})`);
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
      return mk('ERR_CERT_REQUIRED', 'a client certificate is required (give --cert/--key, or the pki identity)');
  }
  if (PSK_MISMATCH.has(code)) {
    return mk('ERR_PSK_MISMATCH', 'TLS-PSK handshake failed: the peers use different keys (check the PSK on both sides)');
  }
  if (CERT_UNTRUSTED.has(code)) {
    return mk('ERR_CERT_UNTRUSTED', `the peer's certificate is not trusted (${code}); give its CA with --ca or its pin with --pin`);
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return mk('ERR_TLS_HANDSHAKE', `TLS ${context.during === 'transfer' ? 'error' : 'handshake failed'}: ${msg.split('\n')[0] ?? code}`);
  }
  return mk('ERR_INTERNAL', msg);
}
