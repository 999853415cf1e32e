// privacy: true — random names and a new id per run; anything stable the app could pass is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { resolveOptions } from '../../../src/session/options.js';
import { PeerID } from '../../../src/session/peer-id.js';
import { buildTxt } from '../../../src/session/discovery-info.js';
import { Mdns } from '../../../src/dnssd/index.js';
import { isPeerlinkError } from '../../../src/errors.js';

test('privacy: random instance name, host name and id each time; no id in TXT; the display name stays the app\'s', () => {
  const a = resolveOptions({ serviceType: 'x', privacy: true, displayName: 'Alice' });
  const b = resolveOptions({ serviceType: 'x', privacy: true, displayName: 'Alice' });
  assert.equal(a.peerId.displayName, 'Alice');
  assert.notEqual(a.instanceName, 'Alice');
  assert.notEqual(a.instanceName, b.instanceName);
  assert.ok(a.hostName !== undefined && b.hostName !== undefined && a.hostName !== b.hostName);
  const host = (hostname().split('.')[0] ?? '').toLowerCase();
  for (const v of [a.instanceName, a.hostName, a.peerId.displayName === 'Alice' ? '' : a.peerId.displayName]) assert.ok(!v.toLowerCase().includes(host) || host === '');
  assert.ok(!a.peerId.equals(b.peerId));
  assert.equal(buildTxt(a).id, undefined);
  // The default display name is random too (it is shown to every peer that connects).
  const c = resolveOptions({ serviceType: 'x', privacy: true });
  assert.ok(!c.peerId.displayName.toLowerCase().includes(host));
  // Without privacy: the device's names, no host override.
  assert.equal(resolveOptions({ serviceType: 'x', displayName: 'Alice' }).instanceName, 'Alice');
  assert.equal(resolveOptions({ serviceType: 'x' }).hostName, undefined);
});

test('privacy refuses a persistent id, a fixed instance name, the id in TXT and a shared mDNS engine', async () => {
  const mdns = new Mdns({ interfaces: ['lo'] });
  try {
    for (const bad of [{ peerId: PeerID.generate('p') }, { instanceName: 'Fixed' }, { includePeerIdInTxt: true }, { mdns }]) {
      assert.throws(() => resolveOptions({ serviceType: 'x', privacy: true, ...bad }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    }
  } finally {
    await mdns.close();
  }
});
