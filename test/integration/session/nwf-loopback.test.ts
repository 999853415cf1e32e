/**
 * Two NwfSessions on 127.0.0.1 (no discovery): both dial each other at once and the seed's rule
 * leaves one connection per pair, the same one on both sides; messages flow; a wrong key never
 * connects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { NwfSession } from '../../../src/session/nwf-session.js';
import { Endpoint } from '../../../src/net/index.js';

const KEY = randomBytes(16).toString('hex');
const mk = (name: string, key = KEY): NwfSession => new NwfSession({ serviceType: 'nwf', displayName: name, advertise: false, browse: false, security: { mode: 'psk', key } });

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('simultaneous dials both ways: one connection per pair on each side, messages flow both ways', async () => {
  const a = mk('A');
  const b = mk('B');
  await a.start();
  await b.start();
  try {
    const [pb, pa] = await Promise.all([a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)), b.connect(Endpoint.hostPort('127.0.0.1', a.listenPort))]);
    assert.ok(pb.equals(b.peerId));
    assert.ok(pa.equals(a.peerId));
    await until(() => a.stats.connections === 1 && b.stats.connections === 1);
    assert.equal(a.connectedPeers.length, 1);
    assert.equal(b.connectedPeers.length, 1);
    const atB = new Promise<string>((r) => b.once('message', (d) => r(String(d))));
    const atA = new Promise<string>((r) => a.once('message', (d) => r(String(d))));
    await a.send('to b', { to: pb });
    await b.send('to a');
    assert.equal(await atB, 'to b');
    assert.equal(await atA, 'to a');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a wrong key never connects', async () => {
  const a = mk('A');
  const b = mk('B', randomBytes(16).toString('hex'));
  await a.start();
  await b.start();
  try {
    await assert.rejects(a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)));
    assert.equal(b.connectedPeers.length, 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
