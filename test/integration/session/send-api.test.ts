/**
 * First hour, defect 9: send() before start() and sends to peers that are not connected are
 * never dropped silently; send() resolves with the number of peers the message went to; the
 * `advertised` event tells when `instanceName` is known (after `ready`, again after a rename).
 * 127.0.0.1 and mDNS on `lo` only, with a random service type.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerSession } from '../../../src/session/index.js';
import { PeerID } from '../../../src/session/peer-id.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';

const code = (c: string) => (e: unknown): boolean => isPeerlinkError(e) && e.code === c;

function plain(name: string): PeerSession {
  return new PeerSession({ serviceType: 'sendapi', displayName: name, advertise: false, browse: false });
}

test('send(): before start() → ERR_INVALID_STATE; to nobody → 0; to a peer not connected → ERR_PEER_NOT_CONNECTED; resolves with the count; after close() → ERR_CLOSED', async () => {
  const a = plain('A');
  const b = plain('B');
  const stranger = PeerID.generate('nobody');
  await assert.rejects(a.send('early'), code('ERR_INVALID_STATE'));
  await assert.rejects(a.send('early', { to: stranger }), code('ERR_INVALID_STATE'));
  await a.start();
  await b.start();
  try {
    assert.equal(await a.send('to everyone, nobody here'), 0);
    await assert.rejects(a.send('x', { to: stranger }), code('ERR_PEER_NOT_CONNECTED'));
    await assert.rejects(a.send('x', { to: [stranger] }), code('ERR_PEER_NOT_CONNECTED'));
    const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
    const got: string[] = [];
    b.on('message', (d) => got.push(String(d)));
    assert.equal(await a.send('all'), 1);
    assert.equal(await a.send('one', { to: pb }), 1);
    const buf = Buffer.from('fast');
    // The second send to the same peer with a Buffer takes the fast path.
    assert.equal(await a.send(buf, { to: pb }), 1);
    assert.equal(await a.send(buf, { to: pb }), 1);
    assert.equal(await a.send('list', { to: [pb] }), 1);
    for (let i = 0; i < 100 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['all', 'one', 'fast', 'fast', 'list']);
    await b.close();
    for (let i = 0; i < 200 && a.connectedPeers.length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    await assert.rejects(a.send(buf, { to: pb }), code('ERR_PEER_NOT_CONNECTED'));
    assert.equal(await a.send('nobody left'), 0);
  } finally {
    await a.close();
    await b.close();
  }
  await assert.rejects(a.send('late'), code('ERR_CLOSED'));
});

test("'advertised': after 'ready', with the final instance name (a conflict renames the second session)", async () => {
  const service = `adv${Math.floor(Math.random() * 1e6)}`;
  const mk = (): PeerSession => new PeerSession({ serviceType: service, displayName: 'Same', browse: false, interfaces: ['lo'] });
  const a = mk();
  const b = mk();
  const order: string[] = [];
  const advertised = (s: PeerSession, tag: string): Promise<string> =>
    new Promise((resolve) => {
      s.once('ready', () => order.push(`${tag} ready`));
      s.once('advertised', (name) => {
        order.push(`${tag} advertised`);
        assert.equal(s.instanceName, name);
        resolve(name);
      });
    });
  try {
    const pa = advertised(a, 'a');
    await a.start();
    assert.equal(await pa, 'Same');
    const pb = advertised(b, 'b');
    await b.start();
    assert.equal(await pb, 'Same (2)');
    assert.deepEqual(order, ['a ready', 'a advertised', 'b ready', 'b advertised']);
  } finally {
    await a.close();
    await b.close();
  }
});
