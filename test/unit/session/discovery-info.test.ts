import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTxt, readTxt } from '../../../src/session/discovery-info.js';
import { resolveOptions } from '../../../src/session/options.js';
import { PeerID } from '../../../src/session/peer-id.js';

test('defaults: star, no security, autoConnect, keepalive detects a lost peer within 10 s', () => {
  const o = resolveOptions({ serviceType: 'chat', displayName: 'A' });
  assert.equal(o.bonjourType, '_chat._tcp');
  assert.equal(o.architecture, 'star');
  assert.equal(o.security.mode, 'none');
  assert.equal(o.autoConnect, true);
  assert.ok(o.listen && o.advertise && o.browse);
  assert.ok(o.keepaliveInterval + o.keepaliveTimeout <= 10_000, 'interval + timeout is the worst-case detection time');
  assert.equal(o.includePeerIdInTxt, false);
  assert.equal(o.instanceName, 'A');
  const client = resolveOptions({ serviceType: 'chat', displayName: 'C', architecture: 'client-server', role: 'client' });
  assert.ok(!client.listen && !client.advertise && client.browse);
  const server = resolveOptions({ serviceType: 'chat', displayName: 'S', architecture: 'client-server', role: 'server' });
  assert.ok(server.listen && server.advertise && !server.browse);
});

test('TXT: session keys, app keys, peer id only when asked', () => {
  const peerId = PeerID.generate('A');
  const o = resolveOptions({ serviceType: 'chat', peerId, security: { mode: 'psk', key: 'aa'.repeat(16) }, discoveryInfo: { role: 'receiver' } });
  assert.deepEqual(buildTxt(o), { v: '1', sec: 'psk', arch: 'star', role: 'receiver' });
  const withId = resolveOptions({ serviceType: 'chat', peerId, includePeerIdInTxt: true });
  assert.equal(buildTxt(withId).id, peerId.id);
});

test('reading TXT: compatibility by security and architecture; missing keys tolerated; app keys separated', () => {
  const star = resolveOptions({ serviceType: 'chat', displayName: 'A', security: { mode: 'psk', key: 'aa'.repeat(16) } });
  const ok = readTxt('B', { v: '1', sec: 'psk', arch: 'star', id: 'A0000000-0000-4000-8000-000000000000', role: 'x', flag: true }, ['lo'], star);
  assert.equal(ok.compatible, true);
  assert.equal(ok.peerId, 'a0000000-0000-4000-8000-000000000000', 'ids are normalised to lower case');
  assert.deepEqual(ok.discoveryInfo, { role: 'x', flag: '' });
  assert.equal(readTxt('B', {}, ['lo'], star).compatible, true, 'another implementation may advertise nothing');
  const sec = readTxt('B', { sec: 'none' }, ['lo'], star);
  assert.equal(sec.compatible, false);
  assert.match(sec.incompatibleReason ?? '', /security/);
  assert.equal(readTxt('B', { arch: 'server' }, ['lo'], star).compatible, false);
  assert.equal(readTxt('B', { id: 'not-a-uuid' }, ['lo'], star).peerId, undefined);
  const client = resolveOptions({ serviceType: 'chat', displayName: 'C', architecture: 'client-server', role: 'client' });
  assert.equal(readTxt('S', { arch: 'server' }, ['lo'], client).compatible, true);
  assert.equal(readTxt('S', { arch: 'client' }, ['lo'], client).compatible, false);
  assert.equal(readTxt('S', { arch: 'star' }, ['lo'], client).compatible, false);
});
