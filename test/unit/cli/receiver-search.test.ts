// ReceiverSearch: one receiver found twice — by its --connect address and by browsing — is one
// receiver. The browse result may arrive after sending began on the --connect connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReceiverSearch } from '../../../src/cli/receiver-search.js';
import type { DiscoveredPeer } from '../../../src/session/index.js';

const ID = '1229441e-1425-42f1-adda-aebcb09b3507';
const browsed = (instanceName: string, peerId?: string): DiscoveredPeer => ({
  instanceName,
  txt: { role: 'receiver', sec: 'psk' },
  discoveryInfo: { role: 'receiver' },
  compatible: true,
  interfaces: ['eth0'],
  ...(peerId ? { peerId } : {}),
});

test('a browse result after sending began (same peer id) is the receiver already sent to, not one unreached', () => {
  const s = new ReceiverSearch('psk', new Set());
  s.addManual('10.77.0.2:7731');
  s.started('10.77.0.2:7731', ID);
  s.found(browsed('Both', ID));
  s.expire(10);
  assert.deepEqual(s.unreachable(), []);
  assert.ok(s.settled(Date.now() + 5000));
});

test('matched by instance name when the browse result carries no peer id', () => {
  const s = new ReceiverSearch('psk', new Set());
  s.addManual('10.77.0.2:7731');
  s.started('Both', ID); // consider(): the connected peer's instance name
  s.started('10.77.0.2:7731', ID);
  s.found(browsed('Both'));
  s.expire(10);
  assert.deepEqual(s.unreachable(), []);
});

test('browse result first, connection later: the peer id marks it started', () => {
  const s = new ReceiverSearch('psk', new Set());
  s.addManual('10.77.0.2:7731');
  s.found(browsed('Both', ID));
  s.started('10.77.0.2:7731', ID);
  s.expire(10);
  assert.deepEqual(s.unreachable(), []);
});

test('another receiver found by browsing is still one to reach', () => {
  const s = new ReceiverSearch('psk', new Set());
  s.addManual('10.77.0.2:7731');
  s.started('10.77.0.2:7731', ID);
  s.found(browsed('Other', '6970fa1a-bcaa-4a73-8f8d-2433c1bd3574'));
  s.expire(10);
  assert.deepEqual(s.unreachable().map((r) => r.name), ['Other']);
});
