/**
 * TLS settings for both roles, and the post-handshake verification of the peer.
 *
 * Node's own verification is switched off (rejectUnauthorized: false) only so that we can do
 * it ourselves with stable error codes, SPKI pins and an async verify hook; a peer that does
 * not pass the checks below never becomes a ready connection. Nothing is "accept everything"
 * by default: without ca / pins / verify the system roots and the host name are checked.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { ConnectionOptions, DetailedPeerCertificate, SecureContext, TLSSocket, TlsOptions as NodeTlsOptions } from 'node:tls';
import { PeerlinkError } from '../errors.js';
import { matchesPin, parsePin, spkiPin } from './identity.js';
import type { PeerInfo, PkiOptions, PskOptions, TlsOptions } from './options.js';
import { DEFAULT_PSK_IDENTITY, PSK_TLS12_CIPHERS, PSK_TLS13_SUITES, parsePsk } from './psk.js';
import { tlsModule } from './tls-module.js';

/** AEAD-only suites for certificate TLS (Node's default list still has CBC suites for 1.2). */
export const PKI_CIPHERS = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const PSK_CIPHERS = `${PSK_TLS13_SUITES}:${PSK_TLS12_CIPHERS}`;

function asList(v: string | Buffer | Array<string | Buffer> | undefined): Array<string | Buffer> {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Secure contexts are costly to build (~0.3 ms); one per TlsOptions object and role. The
 * client's PSK key and callback are kept with them, so a dial builds no closure and parses no hex.
 */
const contexts = new WeakMap<TlsOptions, { client?: SecureContext; server?: SecureContext; psk?: ConnectionOptions['pskCallback'] }>();

function baseOptions(opts: TlsOptions): NodeTlsOptions {
  const o: NodeTlsOptions = {
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
  };
  if (opts.psk) o.ciphers = PSK_CIPHERS;
  else {
    o.ciphers = PKI_CIPHERS;
    const pki = opts.pki as PkiOptions;
    if (pki.cert !== undefined) o.cert = pki.cert;
    if (pki.key !== undefined) o.key = pki.key;
    const anchors = asList(pki.ca);
    if (anchors.length > 0) o.ca = pki.systemRoots ? [...tlsModule().rootCertificates, ...anchors] : anchors;
  }
  return o;
}

function entryFor(opts: TlsOptions): { client?: SecureContext; server?: SecureContext; psk?: ConnectionOptions['pskCallback'] } {
  let entry = contexts.get(opts);
  if (!entry) {
    entry = {};
    contexts.set(opts, entry);
  }
  return entry;
}

function contextFor(opts: TlsOptions, role: 'client' | 'server'): SecureContext {
  const entry = entryFor(opts);
  let ctx = entry[role];
  if (!ctx) {
    try {
      ctx = tlsModule().createSecureContext(baseOptions(opts));
    } catch (err) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `invalid TLS settings: ${(err as Error).message}`, { cause: err });
    }
    entry[role] = ctx;
  }
  return ctx;
}

/** Options for tls.connect() over an already connected socket. */
export function clientTlsOptions(opts: TlsOptions, dialledHost: string): ConnectionOptions {
  const o: ConnectionOptions = {
    secureContext: contextFor(opts, 'client'),
    minVersion: opts.minVersion ?? 'TLSv1.2',
    maxVersion: opts.maxVersion ?? 'TLSv1.3',
    rejectUnauthorized: false,
    // Host names are checked in verifyPkiPeer, so that `authorized` reflects the chain only.
    checkServerIdentity: () => undefined,
  };
  if (opts.psk) {
    o.ciphers = PSK_CIPHERS;
    o.pskCallback = clientPskCallback(opts, opts.psk);
  } else {
    const name = opts.pki?.serverName ?? dialledHost;
    // SNI carries names only, never IP literals (RFC 6066 §3).
    if (isIP(name) === 0) o.servername = name;
  }
  return o;
}

function clientPskCallback(opts: TlsOptions, psk: PskOptions): NonNullable<ConnectionOptions['pskCallback']> {
  const entry = entryFor(opts);
  if (entry.psk) return entry.psk;
  const key = parsePsk(psk.key);
  const identity = psk.identity ?? DEFAULT_PSK_IDENTITY;
  const cb = (): { psk: Buffer; identity: string } => ({ psk: key, identity });
  entry.psk = cb;
  return cb;
}

/**
 * Builds (and caches) what a dial with these options needs before its first dial, so that
 * the first connection of a session does not pay for the secure context (0.05-0.3 ms here,
 * more with certificates). Invalid settings are left for the dial to report.
 */
export function prepareClientTls(opts: TlsOptions): void {
  try {
    contextFor(opts, 'client');
    if (opts.psk) clientPskCallback(opts, opts.psk);
  } catch {
    // the dial reports it (ERR_INVALID_ARGUMENT), as before
  }
}

/** Options for the (never listening) tls.Server a Listener feeds its sockets into. */
export function serverTlsOptions(opts: TlsOptions, handshakeTimeout: number, rejectedIdentity: WeakSet<TLSSocket>): NodeTlsOptions {
  const o: NodeTlsOptions = { ...baseOptions(opts), handshakeTimeout };
  if (opts.psk) {
    const psk: PskOptions = opts.psk;
    const key = parsePsk(psk.key);
    o.pskCallback = (socket: TLSSocket, identity: string) => {
      if (psk.identity !== undefined && identity !== psk.identity) {
        rejectedIdentity.add(socket);
        return null;
      }
      return key;
    };
  } else {
    const pki = opts.pki as PkiOptions;
    if (pki.cert === undefined || pki.key === undefined) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'a TLS listener needs an identity (pki.cert and pki.key); generateIdentity() makes a self-signed one');
    }
    const wantCert = pki.requestClientCertificate === true || pki.requireClientCertificate === true;
    o.requestCert = wantCert;
    // With only CA trust, let OpenSSL refuse during the handshake so the client sees a TLS
    // alert rather than a connection that turns ready and then closes.
    o.rejectUnauthorized = wantCert && pki.requireClientCertificate === true && !pki.pins && !pki.verify && asList(pki.ca).length > 0;
  }
  return o;
}

/** The peer's chain, leaf first, as X509Certificate objects. */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (c && c.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/**
 * Checks a PKI peer after the handshake; throws the PeerlinkError that explains a refusal.
 * The host name check applies to clients that dialled a name or an IP literal and use CA trust.
 */
export async function verifyPkiPeer(socket: TLSSocket, pki: PkiOptions, peer: PeerInfo): Promise<void> {
  const chain = peerChain(socket);
  const leaf = chain[0];
  if (!leaf) {
    if (peer.role === 'server' && !pki.requireClientCertificate) return; // optional client cert not given
    throw new PeerlinkError('ERR_CERT_REQUIRED', peer.role === 'server' ? 'the client presented no certificate, and one is required' : 'the server presented no certificate');
  }
  const pins = (pki.pins ?? []).map(parsePin);
  const anchors = asList(pki.ca);
  const useChain = anchors.length > 0 || (pins.length === 0 && !pki.verify);
  if (pins.length > 0 && !matchesPin(leaf, pins)) {
    throw new PeerlinkError('ERR_CERT_PIN_MISMATCH', `the peer's public key ${spkiPin(leaf)} matches none of the pinned keys`);
  }
  if (useChain) {
    if (!socket.authorized) {
      const why = socket.authorizationError;
      const code = typeof why === 'object' && why !== null && 'code' in why ? String((why as { code: unknown }).code) : String(why);
      throw new PeerlinkError('ERR_CERT_UNTRUSTED', `the peer's certificate is not trusted (${code}); trust its CA (ca / --ca) or pin its key (pins / --pin ${spkiPin(leaf)})`);
    }
    if (peer.role === 'client') {
      const name = peer.serverName ?? peer.remote.host;
      const bad = tlsModule().checkServerIdentity(name, socket.getPeerCertificate());
      if (bad) throw new PeerlinkError('ERR_CERT_HOSTNAME_MISMATCH', `the peer's certificate is not valid for "${name}": ${bad.message}`);
    }
  }
  if (pki.verify) {
    let ok: boolean;
    try {
      ok = await pki.verify(chain, peer);
    } catch (err) {
      throw new PeerlinkError('ERR_CERT_UNTRUSTED', `the verify hook threw: ${(err as Error).message}`, { cause: err });
    }
    if (!ok) throw new PeerlinkError('ERR_CERT_UNTRUSTED', "the peer's certificate was refused by the verify hook");
  }
}
