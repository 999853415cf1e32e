/**
 * Invitations (docs/security.md "Invitations"): with `autoConnect: false` every incoming
 * connection waits for the app's answer, so what a stranger can make the victim hold is bounded
 * by the invitation budgets — pending invitations in total (`invitationsPending`) and per source
 * address (`invitationsPerAddress`), context bytes (`invitationContextBytes`) and the longest
 * wait (`invitationTimeout`), whatever timeout the INVITE asks for. Attackers are raw sockets
 * with hand-built HELLO / INVITE frames.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { cleanup, closedWithin, frame, hello, invite, INVITE_CAPABILITY, rawConnect, startVictim } from './harness.js';
import { sleep, until } from '../harness/proc.js';

after(cleanup);

test('a flood of invitations: held within the pending budgets, each for at most invitationTimeout; an honest inviter elsewhere is still asked', async (t) => {
  const v = await startVictim({ autoConnect: false, holdInvitations: true, budgets: { invitationTimeout: 4000 } });
  const before = await v.cost();
  const socks: Socket[] = [];
  // 40 invitations from one address, each asking to wait "for ever" with a full context.
  for (let i = 0; i < 40; i++) {
    const s = await rawConnect(v.port, '127.0.0.1', '127.0.0.1');
    s.on('error', () => undefined);
    s.write(frame(hello({ peerId: randomBytes(16), capabilities: 0b1011 | INVITE_CAPABILITY })));
    s.write(frame(invite(0xffffffff, randomBytes(1024))));
    socks.push(s);
  }
  await until(async () => (await v.cost()).stats.budgets.invitationsPerAddress === 36, 10_000, 'the 36 over the per-address budget refused');
  // The refused ones are closed by the victim (BYE, then destroyed even though the attacker never reads).
  const flooded = await until(async () => {
    const c = await v.cost();
    return c.incoming - before.incoming <= 4 ? c : undefined;
  }, 10_000, 'refused connections closed by the victim');
  t.diagnostic(`held: invitations ${String(flooded.stats.invitations)}, incoming ${flooded.incoming} (before ${before.incoming}), rss +${((flooded.peakRss - before.rss) / 1048576).toFixed(1)} MiB`);
  assert.equal(flooded.stats.invitations, 4);
  assert.equal(v.events('invitation').length, 4);
  // Nothing of the inviters is a peer.
  assert.equal(flooded.stats.peers, 0);
  assert.equal(v.events('peer').length, 0);
  // Another address is still asked (the per-address budget costs the flooding address only).
  const honest = await rawConnect(v.port, '127.0.0.1', '127.0.5.1');
  honest.on('error', () => undefined);
  honest.write(frame(hello({ peerId: randomBytes(16), capabilities: 0b1011 | INVITE_CAPABILITY, displayName: 'honest' })));
  honest.write(frame(invite(60_000, Buffer.from('hi'))));
  await until(() => v.events('invitation').some((e) => String(e.address).includes('127.0.5.1')), 10_000, 'the honest invitation').catch((err: unknown) => {
    t.diagnostic(JSON.stringify(v.events('invitation')) + JSON.stringify(v.events('peerError')));
    throw err;
  });
  // Whatever timeout was asked for, every held invitation ends after invitationTimeout.
  const closed = await Promise.all(socks.map((s) => closedWithin(s, 15_000)));
  assert.ok(closed.every(Boolean), 'every attacker connection closed by the victim');
  honest.destroy();
  // Nothing left behind: no invitation, no accepted connection, no file descriptor.
  await until(async () => {
    const c = await v.cost();
    return c.stats.invitations === 0 && c.incoming <= before.incoming && c.fds <= before.fds ? c : undefined;
  }, 15_000, 'no invitation, connection or fd left');
});

test('a flood across many addresses stops at invitationsPending in total', async () => {
  const v = await startVictim({ autoConnect: false, holdInvitations: true, budgets: { invitationsPending: 6 } });
  for (let i = 0; i < 12; i++) {
    const s = await rawConnect(v.port, '127.0.0.1', `127.0.7.${1 + i}`);
    s.on('error', () => undefined);
    s.write(frame(hello({ peerId: randomBytes(16), capabilities: 0b1011 | INVITE_CAPABILITY })));
    s.write(frame(invite(60_000, Buffer.alloc(16))));
  }
  await until(async () => (await v.cost()).stats.budgets.invitationsPending === 6, 10_000, 'six refused by the total budget');
  const c = await v.cost();
  assert.equal(c.stats.invitations, 6);
  assert.equal(v.events('invitation').length, 6);
});

test('an INVITE context over invitationContextBytes is refused (and the connection closed), an uninvited HELLO waits for the app', async () => {
  const v = await startVictim({ autoConnect: false, holdInvitations: true, budgets: { invitationContextBytes: 100 } });
  const s = await rawConnect(v.port);
  s.on('error', () => undefined);
  s.write(frame(hello({ peerId: randomBytes(16), capabilities: 0b1011 | INVITE_CAPABILITY })));
  s.write(frame(invite(60_000, Buffer.alloc(101))));
  assert.ok(await closedWithin(s, 10_000));
  await until(async () => (await v.cost()).stats.budgets.invitationContextBytes === 1, 10_000, 'counted');
  assert.equal(v.events('invitation').length, 0);
  // A plain HELLO (a peer that does not know invitations) is an invitation too, never a peer.
  const u = await rawConnect(v.port);
  u.on('error', () => undefined);
  u.write(frame(hello({ peerId: randomBytes(16) })));
  await until(() => v.events('invitation').length === 1, 10_000, 'the uninvited connection raised an invitation');
  await sleep(300);
  assert.equal(v.events('peer').length, 0);
  assert.equal((await v.cost()).stats.peers, 0);
});
