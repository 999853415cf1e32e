/**
 * The key a PKI session is (DESIGN.md §6 "Peer ids"): a private key and a certificate for it,
 * app-supplied (PEM) or generated and kept in an identity directory, and the peer id derived
 * from its public key — the first 128 bits of SHA-256(SubjectPublicKeyInfo DER), written as a
 * UUID — so an id cannot be claimed without the key.
 *
 * Generating the key is synchronous (the peer id is needed when the session is constructed);
 * the self-signed certificate for it is made by @peculiar/x509 (asynchronous, webcrypto) in
 * `ensureCertificate()`, which PeerSession.start() awaits before anything listens or dials.
 */
import { X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadX509 } from '../../net/identity.js';
import { PeerlinkError } from '../../errors.js';

/** File names inside an identity directory. */
export const IDENTITY_KEY_FILE = 'identity.key';
export const IDENTITY_CERT_FILE = 'identity.crt';

/** An identity given by the app: certificate (may hold a chain, leaf first) and private key, PEM. */
export interface PemIdentity {
  cert: string | Buffer;
  key: string | Buffer;
}

/** The 16 peer-id bytes of a SubjectPublicKeyInfo (DER). */
export function peerIdBytesOfSpki(spki: Buffer): Buffer {
  return createHash('sha256').update(spki).digest().subarray(0, 16);
}

/** `sha256/BASE64` of a SubjectPublicKeyInfo (curl's --pinnedpubkey form, as `--pin` takes it). */
export function fingerprintOfSpki(spki: Buffer): string {
  return `sha256/${createHash('sha256').update(spki).digest('base64')}`;
}

/** The DER SubjectPublicKeyInfo of a certificate. */
export function spkiOf(cert: X509Certificate): Buffer {
  return cert.publicKey.export({ type: 'spki', format: 'der' });
}

/**
 * A self-signed chain is acceptable when its leaf's signature verifies with its own key or
 * with the next certificate's (a chain the peer sent must hang together). Trust in the key
 * itself comes from the known-peers store and first-contact verification, not from a CA.
 */
export function chainIsConsistent(chain: readonly X509Certificate[]): boolean {
  const leaf = chain[0];
  if (!leaf) return false;
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i] as X509Certificate;
    const issuer = chain[i + 1] ?? c;
    try {
      if (!c.verify(issuer.publicKey)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

export class SessionIdentity {
  readonly privateKey: KeyObject;
  readonly spki: Buffer;
  /** The 16 bytes of our peer id. */
  readonly idBytes: Buffer;
  readonly fingerprint: string;
  /** Where it is kept (undefined: in memory only, for this run). */
  readonly dir: string | undefined;
  #cert: string | undefined;

  private constructor(privateKey: KeyObject, cert: string | undefined, dir: string | undefined) {
    this.privateKey = privateKey;
    this.spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
    this.idBytes = peerIdBytesOfSpki(this.spki);
    this.fingerprint = fingerprintOfSpki(this.spki);
    this.dir = dir;
    this.#cert = cert;
  }

  /** PKCS#8 PEM of the private key. */
  get keyPem(): string {
    return this.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** The certificate PEM, once ensureCertificate() has run (or when it was given / stored). */
  get certPem(): string | undefined {
    return this.#cert;
  }

  /** From an app-supplied certificate and key: the certificate must be for that key. */
  static fromPem(id: PemIdentity): SessionIdentity {
    let key: KeyObject;
    let leaf: X509Certificate;
    try {
      key = createPrivateKey(id.key);
      leaf = new X509Certificate(id.cert);
    } catch (err) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `security.identity: cannot read the certificate or key (${(err as Error).message})`, { cause: err });
    }
    const made = new SessionIdentity(key, id.cert.toString(), undefined);
    if (!spkiOf(leaf).equals(made.spki)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'security.identity: the certificate is not for this private key');
    return made;
  }

  /** A new EC P-256 key, kept in memory for this run. */
  static ephemeral(): SessionIdentity {
    return new SessionIdentity(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, undefined, undefined);
  }

  /**
   * The identity kept in `dir` (identity.key, identity.crt), or a new one (written there with
   * mode 0600 once its certificate exists: ensureCertificate()).
   */
  static inDirectory(dir: string): SessionIdentity {
    let keyText: string | undefined;
    try {
      keyText = readFileSync(join(dir, IDENTITY_KEY_FILE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new PeerlinkError('ERR_INVALID_ARGUMENT', `cannot read the identity in ${dir}: ${(err as Error).message}`, { cause: err });
    }
    if (keyText === undefined) return new SessionIdentity(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, undefined, dir);
    let key: KeyObject;
    try {
      key = createPrivateKey(keyText);
    } catch (err) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `${join(dir, IDENTITY_KEY_FILE)} does not hold a private key; remove the directory's identity files to make a new identity`, { cause: err });
    }
    let cert: string | undefined;
    try {
      cert = readFileSync(join(dir, IDENTITY_CERT_FILE), 'utf8');
      if (!spkiOf(new X509Certificate(cert)).equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))) cert = undefined; // remade below
    } catch {
      cert = undefined;
    }
    return new SessionIdentity(key, cert, dir);
  }

  /** Makes (and stores, with a directory) the self-signed certificate if there is none yet. */
  async ensureCertificate(commonName: string): Promise<string> {
    if (this.#cert !== undefined) return this.#cert;
    const cert = await selfSigned(this.privateKey, commonName);
    if (this.#cert !== undefined) return this.#cert;
    this.#cert = cert;
    if (this.dir !== undefined) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeAtomic(join(this.dir, IDENTITY_KEY_FILE), this.keyPem);
      writeAtomic(join(this.dir, IDENTITY_CERT_FILE), cert);
    }
    return cert;
  }
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * A self-signed certificate for an EC P-256 key (the key type we generate). Validity dates are
 * not checked by peers (trust is in the key, like an SSH host key), so it is made long-lived.
 */
async function selfSigned(privateKey: KeyObject, commonName: string): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  if (privateKey.asymmetricKeyType !== 'ec') throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'only EC P-256 identities are generated here; give security.identity for other key types');
  const subtle = webcrypto.subtle;
  const priv = await subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), alg, true, ['sign']);
  const pub = await subtle.importKey('spki', createPublicKey(privateKey).export({ type: 'spki', format: 'der' }), alg, true, ['verify']);
  // Loaded here, not with the module: ~16 MiB of RSS that a PSK/none session never needs.
  const x509 = await loadX509();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName.replace(/[,=+<>#;\\"]/g, '_')}`,
    notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 100 * 365 * 86_400_000),
    signingAlgorithm: alg,
    keys: { privateKey: priv, publicKey: pub } as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return cert.toString('pem');
}
