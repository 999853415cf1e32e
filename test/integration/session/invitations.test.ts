/**
 * Invitations (Multipeer's invitePeer / invitationHandler) between two sessions on 127.0.0.1,
 * by address (no discovery): accepted, declined, expired, uninvited — and that an invitation
 * that does not end in a connection leaves no connection behind on either side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PeerSession } from '../../../src/session/index.js';
import type { Invitation } from '../../../src/session/invitations.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import type { PeerSessionOptions } from '../../../src/session/options.js';

const KEY = randomBytes(32).toString('hex');

function mk(name: string, extra: Partial<PeerSessionOptions> = {}): PeerSession {
  return new PeerSession({ serviceType: 'inv', displayName: name, advertise: false, browse: false, autoConnect: false, security: { mode: 'psk', key: KEY }, keepaliveInterval: 500, ...extra });
}

/** Alice and Bob (`opts` for each) started, given to `body`, and closed after it. */
async function withPair(
  opts: { a?: Partial<PeerSessionOptions>; b?: Partial<PeerSessionOptions> },
  body: (a: PeerSession, b: PeerSession) => Promise<void>,
): Promise<void> {
  const a = mk('Alice', opts.a);
  const b = mk('Bob', opts.b);
  await a.start();
  await b.start();
  try {
    await body(a, b);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function nextInvitation(s: PeerSession): Promise<Invitation> {
  return new Promise((resolve) => s.once('invitation', resolve));
}

test('invite → invitation with context → accept: both connected, messages flow', async () => {
  await withPair({}, async (a, b) => {
    const inv = nextInvitation(b);
    const joined = a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { context: 'game #7', timeout: 20_000 });
    const invitation = await inv;
    assert.equal(invitation.peer.displayName, 'Alice');
    assert.ok(invitation.peer.equals(a.peerId));
    assert.equal(invitation.context.toString(), 'game #7');
    assert.equal(invitation.invited, true);
    assert.equal(invitation.state, 'pending');
    // Nothing of the inviter is a peer yet.
    assert.equal(b.connectedPeers.length, 0);
    assert.equal(b.stats.peers, 0);
    assert.equal(b.stats.invitations, 1);
    const [pa, pb] = await Promise.all([invitation.accept(), joined]);
    assert.ok(pa.equals(a.peerId));
    assert.ok(pb.equals(b.peerId));
    assert.equal(invitation.state, 'accepted');
    assert.equal(b.stats.invitations, 0);
    const got = new Promise<string>((r) => b.once('message', (d) => r(String(d))));
    await a.send('hi', { to: pb });
    assert.equal(await got, 'hi');
    // Connected both ways, one connection each.
    await until(() => a.connectedPeers.length === 1 && b.connectedPeers.length === 1);
    assert.equal(a.stats.controlConnections, 1);
    assert.equal(b.stats.controlConnections, 1);
  });
});

test('declined: invite() rejects ERR_INVITATION_DECLINED and no connection is left on either side', async () => {
  await withPair({}, async (a, b) => {
    b.on('invitation', (i) => i.decline());
    const peers: string[] = [];
    a.on('peer', (_p, s) => peers.push(s));
    b.on('peer', (_p, s) => peers.push(s));
    await assert.rejects(a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { context: new Uint8Array([1, 2, 3]) }), (e) => isPeerlinkError(e, 'ERR_INVITATION_DECLINED'));
    await until(() => a.stats.controlConnections === 0 && b.stats.controlConnections === 0);
    assert.equal(b.stats.peers, 0);
    assert.equal(b.stats.invitations, 0);
    assert.deepEqual(b.connectedPeers, []);
    // The inviter never showed the invitee as connected; the invitee never reported the inviter.
    assert.ok(!peers.includes('connected'));
    // Not redialled behind the app's back.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(b.stats.controlConnections, 0);
  });
});

test('no invitation listener: declined at once', async () => {
  await withPair({}, async (a, b) => {
    await assert.rejects(a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort)), (e) => isPeerlinkError(e, 'ERR_INVITATION_DECLINED'));
  });
});

test('expired: the invitee does not answer; invite() rejects ERR_INVITATION_TIMEOUT, the invitation ends, no connection left', async () => {
  await withPair({}, async (a, b) => {
    const inv = nextInvitation(b);
    const joined = a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { timeout: 800 });
    const invitation = await inv;
    assert.ok(invitation.expiresAt - Date.now() <= 800);
    const ended = new Promise<string>((r) => invitation.once('end', r));
    await assert.rejects(joined, (e) => isPeerlinkError(e, 'ERR_INVITATION_TIMEOUT'));
    assert.equal(await ended, 'expired');
    assert.ok(invitation.signal.aborted);
    await assert.rejects(invitation.accept(), (e) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
    await until(() => a.stats.controlConnections === 0 && b.stats.controlConnections === 0);
    assert.equal(b.stats.invitations, 0);
    assert.equal(b.stats.peers, 0);
  });
});

test('the invitee caps the wait at its invitationTimeout budget', async () => {
  await withPair({ b: { budgets: { invitationTimeout: 500 } } }, async (a, b) => {
    const inv = nextInvitation(b);
    const joined = a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { timeout: 60_000 });
    const invitation = await inv;
    assert.ok(invitation.expiresAt - Date.now() <= 500);
    await assert.rejects(joined, (e) => isPeerlinkError(e, 'ERR_INVITATION_TIMEOUT'));
  });
});

test('context over invitationContextBytes is refused before anything is dialled', async () => {
  const a = mk('Alice');
  await a.start();
  try {
    await assert.rejects(a.invite(Endpoint.hostPort('127.0.0.1', 9), { context: Buffer.alloc(1025) }), (e) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
    assert.equal(a.stats.controlConnections, 0);
  } finally {
    await a.close();
  }
});

test('autoConnect: false — an uninvited connect() is an invitation, never a silent connection', async () => {
  await withPair({ a: { autoConnect: true } }, async (a, b) => {
    const inv = nextInvitation(b);
    const connecting = a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
    const invitation = await inv;
    assert.equal(invitation.invited, false);
    assert.equal(invitation.context.length, 0);
    assert.deepEqual(b.connectedPeers, []);
    assert.equal(b.stats.peers, 0);
    await invitation.accept();
    const pb = await connecting;
    assert.ok(pb.equals(b.peerId));
    await until(() => b.connectedPeers.length === 1);
  });
});

test('an invitee with autoConnect: true joins without asking', async () => {
  await withPair({ b: { autoConnect: true } }, async (a, b) => {
    let asked = false;
    b.on('invitation', () => (asked = true));
    const pb = await a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { context: 'x' });
    assert.ok(pb.equals(b.peerId));
    assert.equal(asked, false);
  });
});

test('an invitation may be answered after the handshake deadlines (connectionTimeout, unidentifiedTimeout) have passed', async () => {
  const opts = { connectionTimeout: 800, budgets: { unidentifiedTimeout: 800 } };
  await withPair({ a: opts, b: opts }, async (a, b) => {
    const inv = nextInvitation(b);
    const joined = a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { timeout: 10_000 });
    const invitation = await inv;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(invitation.state, 'pending');
    const [pa, pb] = await Promise.all([invitation.accept(), joined]);
    assert.ok(pa.equals(a.peerId));
    assert.ok(pb.equals(b.peerId));
  });
});

test('an inviter that goes away withdraws its invitation', async () => {
  await withPair({}, async (a, b) => {
    const inv = nextInvitation(b);
    const joined = a.invite(Endpoint.hostPort('127.0.0.1', b.listenPort), { timeout: 20_000 });
    const invitation = await inv;
    const ended = new Promise<string>((r) => invitation.once('end', r));
    await a.close();
    await assert.rejects(joined);
    assert.equal(await ended, 'withdrawn');
    await until(() => b.stats.invitations === 0 && b.stats.controlConnections === 0);
  });
});
