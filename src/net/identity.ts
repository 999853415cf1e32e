/**
 * PKI helpers: self-signed identities for local use, and SPKI pins (`sha256/BASE64`, curl's
 * --pinnedpubkey form; hex accepted on input).
 */
import { X509Certificate, createHash, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { PeerlinkError } from '../errors.js';

export interface Identity {
  /** Certificate, PEM. */
  cert: string;
  /** PKCS#8 private key, PEM. */
  key: string;
  /** `sha256/BASE64` of the certificate's SubjectPublicKeyInfo. */
  pin: string;
}

export interface GenerateIdentityOptions {
  /** Subject common name. Default `peerlink`. */
  commonName?: string;
  /** DNS names / IP addresses for subjectAltName. Default `localhost`, 127.0.0.1, ::1. */
  altNames?: string[];
  /** Validity in days. Default 365. */
  days?: number;
}

let x509Module: Promise<typeof X509> | undefined;

/**
 * @peculiar/x509 (with reflect-metadata, which its decorators need first) is loaded on the
 * first identity made, not with the library: it is ~20 MiB of RSS, and a PSK session, or one
 * given its certificate, never needs it. Shared with session/trust/identity.ts (one loader, one
 * cryptoProvider set).
 */
export function loadX509(): Promise<typeof X509> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Module;
}

function isIpLiteral(s: string): boolean {
  return /^[0-9.]+$/.test(s) || s.includes(':');
}

/** Creates an ECDSA P-256 key and a self-signed certificate for it. */
export async function generateIdentity(options: GenerateIdentityOptions = {}): Promise<Identity> {
  const x509 = await loadX509();
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const names = options.altNames ?? ['localhost', '127.0.0.1', '::1'];
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${(options.commonName ?? 'peerlink').replace(/[,=+<>#;\\"]/g, '_')}`,
    notBefore: new Date(now - 60_000), // tolerate small clock skew between peers
    notAfter: new Date(now + (options.days ?? 365) * 86_400_000),
    signingAlgorithm: alg,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names.map((n) => ({ type: isIpLiteral(n) ? 'ip' : 'dns', value: n }))),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  const pem = cert.toString('pem');
  return { cert: pem, key, pin: spkiPin(pem) };
}

/** `sha256/BASE64` of a certificate's SubjectPublicKeyInfo (PEM, DER or X509Certificate). */
export function spkiPin(cert: string | Buffer | X509Certificate): string {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = c.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256/${createHash('sha256').update(spki).digest('base64')}`;
}

/** Parses a pin (`sha256/BASE64`, or 64 hex digits with optional colons) to its 32 bytes. */
export function parsePin(pin: string): Buffer {
  const p = pin.trim();
  let bytes: Buffer | undefined;
  if (p.toLowerCase().startsWith('sha256/')) bytes = Buffer.from(p.slice(7), 'base64');
  else {
    const hex = p.replace(/:/g, '');
    if (/^[0-9a-fA-F]{64}$/.test(hex)) bytes = Buffer.from(hex, 'hex');
  }
  if (!bytes || bytes.length !== 32) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `invalid pin "${pin}" (expected sha256/BASE64 of the SubjectPublicKeyInfo, or 64 hex digits)`);
  }
  return bytes;
}

/** True when the certificate's SPKI digest equals one of the pins. */
export function matchesPin(cert: X509Certificate, pins: readonly Buffer[]): boolean {
  const digest = Buffer.from(spkiPin(cert).slice(7), 'base64');
  return pins.some((p) => p.equals(digest));
}
