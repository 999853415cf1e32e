/**
 * security 'pki' on 127.0.0.1 (no discovery): key-derived ids, first-contact codes (the same on
 * both sides), known peers connecting silently, a rejected code, a changed key under a known id,
 * verifyPeer refusing a chain, identities kept in a directory and held by one session.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerSession, KnownPeers, SessionIdentity, type VerificationRequest, type PeerSessionOptions, type PkiSecurity } from '../../../src/session/index.js';
import type { PeerID } from '../../../src/session/peer-id.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError, type PeerlinkError } from '../../../src/errors.js';

const sessions = new Set<PeerSession>();
const dirs: string[] = [];
after(async () => {
  await Promise.all([...sessions].map((s) => s.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function mk(name: string, security: Partial<PkiSecurity> = {}, extra: Partial<PeerSessionOptions> = {}): PeerSession {
  const s = new PeerSession({ serviceType: 'pkitest', displayName: name, advertise: false, browse: false, security: { mode: 'pki', ...security }, ...extra });
  sessions.add(s);
  return s;
}

async function until<T>(fn: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function collect(s: PeerSession): { requests: VerificationRequest[]; errors: PeerlinkError[] } {
  const out = { requests: [] as VerificationRequest[], errors: [] as PeerlinkError[] };
  s.on('verify', (r) => out.requests.push(r));
  s.on('peerError', (e) => out.errors.push(e));
  return out;
}

type Collected = ReturnType<typeof collect>;

/** Sessions A and B (`security` for each), their verification requests and errors collected; `beforeStart` adds listeners before both start. */
async function startPair(
  security: { a?: Partial<PkiSecurity>; b?: Partial<PkiSecurity> } = {},
  beforeStart?: (a: PeerSession, b: PeerSession) => void,
): Promise<{ a: PeerSession; b: PeerSession; ca: Collected; cb: Collected }> {
  const a = mk('A', security.a);
  const b = mk('B', security.b);
  const ca = collect(a);
  const cb = collect(b);
  beforeStart?.(a, b);
  await a.start();
  await b.start();
  return { a, b, ca, cb };
}

test('first contact: both sides get the same six-digit code; confirmed on both, the peers connect and talk; ids are derived from the keys', { timeout: 60_000 }, async () => {
  const { a, b, ca, cb } = await startPair();
  assert.equal(a.peerId.id.length, 36);
  const connected = a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  const [ra, rb] = await until(() => (ca.requests[0] && cb.requests[0] ? [ca.requests[0], cb.requests[0]] : undefined), 20_000, 'both verify events');
  assert.match(ra.code, /^\d{6}$/);
  assert.equal(ra.code, rb.code, 'both sides show the same code');
  assert.ok(ra.peer.equals(b.peerId) && rb.peer.equals(a.peerId));
  assert.equal(ra.fingerprint, b.fingerprint);
  // Verifying: connecting, nothing delivered, sends refused.
  assert.equal(a.peerInfo(ra.peer)?.state, 'connecting');
  assert.equal(a.peerInfo(ra.peer)?.trust, 'verifying');
  assert.equal(a.stats.verifying, 1);
  await assert.rejects(a.send('early', { to: ra.peer }), (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
  ra.confirm();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(a.connectedPeers.length, 0, 'one side confirming is not enough');
  rb.confirm();
  const pb = await connected;
  assert.ok(pb.equals(b.peerId));
  await until(() => b.connectedPeers.length === 1, 10_000, 'b connected');
  assert.equal(a.peerInfo(pb)?.trust, 'trusted');
  const got: string[] = [];
  b.on('message', (d) => got.push(String(d)));
  await a.send('hello', { to: pb });
  await until(() => got.length === 1, 10_000, 'message');
  assert.equal(got[0], 'hello');
  // Streams: their own connections, with the same keys (checked against the peer's id).
  const streamed: string[] = [];
  b.on('stream', (st) => st.on('data', (c: Buffer) => streamed.push(String(c))));
  const st = await a.openStream('s', pb);
  st.end('over a stream');
  await until(() => streamed.join('') === 'over a stream', 10_000, 'stream data');
  assert.equal(a.knownPeers?.check(b.peerId.id, b.fingerprint as string), 'known');
  assert.equal(b.knownPeers?.list().length, 1);
  assert.deepEqual([...ca.errors, ...cb.errors].map((e) => e.code), []);
  await a.close();
  await b.close();
});

test('a known peer connects silently (no code) after a restart with the same key; forgetting it makes the next contact a first contact again', { timeout: 60_000 }, async () => {
  const dirA = await mkdtemp(join(tmpdir(), 'pl-pki-a-'));
  const dirB = await mkdtemp(join(tmpdir(), 'pl-pki-b-'));
  dirs.push(dirA, dirB);
  const round = async (expectCode: boolean): Promise<void> => {
    const { a, b, ca, cb } = await startPair({ a: { identityDir: dirA }, b: { identityDir: dirB } }, (a, b) => {
      a.on('verify', (r) => r.confirm());
      b.on('verify', (r) => r.confirm());
    });
    const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
    assert.ok(pb.equals(b.peerId));
    await until(() => b.connectedPeers.length === 1, 10_000, 'b connected');
    assert.equal(ca.requests.length > 0, expectCode, `A was ${expectCode ? '' : 'not '}asked`);
    assert.equal(cb.requests.length > 0, expectCode, `B was ${expectCode ? '' : 'not '}asked`);
    await a.close();
    await b.close();
  };
  await round(true);
  // Same identity dir: same id (the key is kept).
  const kept = JSON.parse(await readFile(join(dirA, 'known-peers.json'), 'utf8')) as { peers: Array<{ id: string; displayName: string }> };
  assert.equal(kept.peers.length, 1);
  assert.equal(kept.peers[0]?.displayName, 'B');
  await round(false);
  const forgotten = KnownPeers.inDirectory(dirA).forget('B');
  assert.equal(forgotten.length, 1);
  // Only A forgot B; B still knows A: the exchange runs because one side asks, and both are asked.
  await round(true);
});

test('an identity dir is held by one session (ERR_IDENTITY_IN_USE) and its key gives the same id each time', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-pki-lock-'));
  dirs.push(dir);
  const a = mk('A', { identityDir: dir });
  await a.start();
  assert.throws(() => mk('A2', { identityDir: dir }), (e: unknown) => isPeerlinkError(e, 'ERR_IDENTITY_IN_USE'));
  const id = a.peerId.id;
  await a.close();
  const again = mk('A', { identityDir: dir });
  assert.equal(again.peerId.id, id);
  await again.close();
});

test('a rejected code refuses the peer on both sides (ERR_VERIFY_REJECTED), and nobody becomes connected', { timeout: 60_000 }, async () => {
  const { a, b, ca, cb } = await startPair();
  const dialled = a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  dialled.catch(() => undefined);
  const rb = await until(() => cb.requests[0], 20_000, 'b verify');
  await until(() => ca.requests[0], 20_000, 'a verify');
  rb.reject();
  await until(() => ca.errors.some((e) => e.code === 'ERR_VERIFY_REJECTED'), 10_000, 'A told of the rejection');
  assert.ok(cb.errors.some((e) => e.code === 'ERR_VERIFY_REJECTED'));
  assert.ok(ca.requests[0]?.signal.aborted, "A's pending question is withdrawn");
  // connect() fails at once, like a wrong key: the dialler does not ask again.
  await assert.rejects(dialled, (e: unknown) => isPeerlinkError(e, 'ERR_VERIFY_REJECTED'));
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(cb.requests.length, 1, 'no second attempt');
  assert.equal(a.connectedPeers.length, 0);
  assert.equal(b.connectedPeers.length, 0);
  assert.equal(a.knownPeers?.list().length, 0);
  await a.close();
  await b.close();
});

test('without a verify listener or trustNew a new peer is refused; trustNew on both sides connects without codes', { timeout: 60_000 }, async () => {
  const a = mk('A');
  const b = mk('B', { trustNew: true });
  const ca = { errors: [] as PeerlinkError[] };
  a.on('peerError', (e) => ca.errors.push(e));
  await a.start();
  await b.start();
  void a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)).catch(() => undefined);
  await until(() => ca.errors.some((e) => e.code === 'ERR_VERIFY_REJECTED'), 20_000, 'refused');
  assert.equal(a.connectedPeers.length, 0);
  await a.close();
  await b.close();
  const c = mk('C', { trustNew: true });
  const d = mk('D', { trustNew: true });
  await c.start();
  await d.start();
  const pd = await c.connect(Endpoint.hostPort('127.0.0.1', d.listenPort));
  assert.ok(pd.equals(d.peerId));
  assert.equal(c.knownPeers?.list()[0]?.id, d.peerId.id, '--trust-new remembers the key (accept-new)');
  await c.close();
  await d.close();
});

test('a known id presenting another key is refused (ERR_PEER_KEY_CHANGED) unless acceptChangedKey says yes', { timeout: 60_000 }, async () => {
  const b = mk('B', { trustNew: true });
  await b.start();
  // A knew B's id with another key (an out-of-band entry, or B's key changed since).
  const changed: Array<{ peer: PeerID; fp: string }> = [];
  const a = mk('A', { trustNew: true });
  a.knownPeers?.trust(b.peerId.id, 'sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'B');
  const errors: PeerlinkError[] = [];
  a.on('peerError', (e) => errors.push(e));
  await a.start();
  void a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)).catch(() => undefined);
  await until(() => errors.some((e) => e.code === 'ERR_PEER_KEY_CHANGED'), 20_000, 'ERR_PEER_KEY_CHANGED');
  assert.equal(a.connectedPeers.length, 0);
  assert.equal(a.knownPeers?.check(b.peerId.id, b.fingerprint as string), 'changed', 'the store is not changed by a refusal');
  await a.close();
  const a2 = mk('A2', {
    trustNew: false,
    acceptChangedKey: (peer, _known, fp) => {
      changed.push({ peer, fp });
      return true;
    },
  });
  a2.knownPeers?.trust(b.peerId.id, 'sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'B');
  await a2.start();
  const pb = await a2.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  assert.ok(pb.equals(b.peerId));
  assert.equal(changed[0]?.fp, b.fingerprint);
  assert.equal(a2.knownPeers?.check(b.peerId.id, b.fingerprint as string), 'known');
  await a2.close();
  await b.close();
});

test('verifyPeer (certificateHandler) refusing the chain refuses the peer with ERR_CERT_UNTRUSTED; an app identity (PEM) is used as given', { timeout: 60_000 }, async () => {
  const idB = SessionIdentity.ephemeral();
  const certB = await idB.ensureCertificate('B');
  const b = mk('B', { trustNew: true, identity: { cert: certB, key: idB.keyPem } });
  assert.equal(b.fingerprint, idB.fingerprint);
  const seen: number[] = [];
  const a = mk('A', {
    trustNew: true,
    verifyPeer: (_peer, chain) => {
      seen.push(chain.length);
      return false;
    },
  });
  const errors: PeerlinkError[] = [];
  a.on('peerError', (e) => errors.push(e));
  await a.start();
  await b.start();
  void a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)).catch(() => undefined);
  await until(() => errors.some((e) => e.code === 'ERR_CERT_UNTRUSTED'), 20_000, 'ERR_CERT_UNTRUSTED');
  assert.equal(seen[0], 1);
  assert.equal(a.connectedPeers.length, 0);
  await a.close();
  await b.close();
});

test('pki over the WebSocket transport: same code on both sides (the exporter of the TLS under WebSocket), then messages', { timeout: 60_000 }, async () => {
  const a = mk('A', {}, { transport: 'ws' });
  const b = mk('B', {}, { transport: 'ws' });
  const codes: string[] = [];
  for (const s of [a, b]) s.on('verify', (r) => {
    codes.push(r.code);
    r.confirm();
  });
  await a.start();
  await b.start();
  const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  assert.equal(codes.length, 2);
  assert.equal(codes[0], codes[1]);
  const got: string[] = [];
  b.on('message', (d) => got.push(String(d)));
  await a.send('over ws', { to: pb });
  await until(() => got.length === 1, 10_000, 'message');
  await a.close();
  await b.close();
});

test('both sides dial each other at once: one connection, one code per side', { timeout: 60_000 }, async () => {
  const { a, b, ca, cb } = await startPair({}, (a, b) => {
    a.on('verify', (r) => setTimeout(() => r.confirm(), 300));
    b.on('verify', (r) => setTimeout(() => r.confirm(), 300));
  });
  const [pb, pa] = await Promise.all([a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)), b.connect(Endpoint.hostPort('127.0.0.1', a.listenPort))]);
  assert.ok(pb.equals(b.peerId) && pa.equals(a.peerId));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(a.stats.controlConnections, 1);
  assert.equal(b.stats.controlConnections, 1);
  // The code of the connection kept was confirmed on both sides: the same one.
  const confirmedA = ca.requests.filter((r) => !r.signal.aborted).map((r) => r.code);
  const confirmedB = cb.requests.filter((r) => !r.signal.aborted).map((r) => r.code);
  assert.equal(confirmedA.length, 1);
  assert.deepEqual(confirmedA, confirmedB);
  await a.close();
  await b.close();
});

test('verifying outlives the handshake timer (connectionTimeout) but not verifyTimeout (ERR_VERIFY_TIMEOUT)', { timeout: 60_000 }, async () => {
  const opts = { connectionTimeout: 800, budgets: { verifyTimeout: 2500 } };
  const a = mk('A', {}, opts);
  const b = mk('B', {}, opts);
  const slow = (r: VerificationRequest): void => void setTimeout(() => r.confirm(), 1500);
  a.on('verify', slow);
  b.on('verify', slow);
  await a.start();
  await b.start();
  const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  assert.ok(pb.equals(b.peerId), 'confirmed after more than connectionTimeout: still connected');
  await a.close();
  await b.close();

  const c = mk('C', {}, opts);
  const d = mk('D', {}, opts);
  const cc = collect(c);
  const cd = collect(d);
  await c.start();
  await d.start();
  const started = Date.now();
  const dialled = c.connect(Endpoint.hostPort('127.0.0.1', d.listenPort));
  await assert.rejects(dialled, (e: unknown) => isPeerlinkError(e) && (e.code === 'ERR_VERIFY_TIMEOUT' || e.code === 'ERR_VERIFY_REJECTED'));
  assert.ok(Date.now() - started >= 2000, 'held until verifyTimeout');
  await until(() => cc.errors.some((e) => e.code === 'ERR_VERIFY_TIMEOUT') || cd.errors.some((e) => e.code === 'ERR_VERIFY_TIMEOUT'), 10_000, 'ERR_VERIFY_TIMEOUT');
  await until(() => cc.requests[0]?.signal.aborted === true && cd.requests[0]?.signal.aborted === true, 10_000, 'the questions withdrawn on both sides');
  assert.equal(c.stats.verifying, 0);
  await c.close();
  await d.close();
});

test('verifyingPeers: at most 4 first contacts compare codes at once; the 5th is refused and counted', { timeout: 60_000 }, async () => {
  const v = mk('V', {}, { budgets: { verificationsPerMinute: 100 } });
  const pending: VerificationRequest[] = [];
  v.on('verify', (r) => pending.push(r));
  await v.start();
  const callers: PeerSession[] = [];
  for (let i = 0; i < 5; i++) {
    const s = mk(`C${i}`);
    s.on('verify', () => undefined); // asked, never answers
    await s.start();
    callers.push(s);
    s.connect(Endpoint.hostPort('127.0.0.1', v.listenPort)).catch(() => undefined);
    if (i < 4) await until(() => pending.length === i + 1, 10_000, `verification ${i + 1}`);
  }
  await until(() => (v.stats.budgets.verifyingPeers ?? 0) >= 1, 10_000, 'the 5th refused');
  assert.equal(v.stats.verifying, 4);
  assert.equal(pending.length, 4);
  // Places are freed when the attempts end (here: the callers leave).
  await Promise.all(callers.map((c) => c.close()));
  await until(() => v.stats.verifying === 0, 10_000, 'places freed when the callers leave');
  await v.close();
});
