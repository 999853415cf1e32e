/**
 * The Network framework profile (NwfSession) against a peer that is not ours, both directions:
 * test/interop/nwf_peer.py — OpenSSL's s_server / s_client pinned to TLS 1.2
 * PSK-AES128-GCM-SHA256 (or TLS 1.3 PSK) carrying WebSocket frames written by hand from RFC
 * 6455, advertising / browsing with python-zeroconf and a `peerID` TXT key (upper-case, as
 * Apple's uuidString). Everything on `lo` of a namespace this test creates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Lab } from '../../harness/netns.js';
import { waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { interopScript, SYSTEM_PYTHON } from '../../harness/paths.js';
import { useLab } from './lab.js';

const skip = skipUnless('netns', 'zeroconf');
let lab: Lab | undefined;
let ns = '';
useLab(skip, { hosts: 0, tag: 'nwf' }, async (l) => {
  lab = l;
  ns = await l.addLoopbackNamespace('nwflo');
});

const FIXTURE = fileURLToPath(new URL('./nwf-fixture.js', import.meta.url));
const T = { timeout: 120_000 };
type Ev = Record<string, unknown>;

function ours(cfg: Record<string, unknown>): TrackedProcess {
  return lab!.spawnNode(ns, FIXTURE, [JSON.stringify(cfg)], { stdin: true, label: 'nwf ours' });
}

function theirs(args: string[]): TrackedProcess {
  return lab!.spawn(ns, SYSTEM_PYTHON, [interopScript('nwf_peer.py'), ...args], { env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' }, label: `nwf_peer ${args[0] ?? ''}` });
}

test('we dial a Network-framework-style server found by its peerID TXT: TLS 1.2 PSK-AES128-GCM-SHA256, WebSocket on /, ids exchanged, messages both ways', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'zeroconf') || !lab) return;
  const psk = randomBytes(16).toString('hex');
  const type = `nwfs${process.pid % 1000}`;
  const theirId = randomUUID().toUpperCase();
  const server = theirs(['server', `_${type}._tcp`, '47123', '--psk', psk, '--id', theirId, '--name', 'Their Mac']);
  await waitForJson(server, (e: Ev) => e.event === 'registered', 30_000);
  const me = ours({ serviceType: type, psk, name: 'Ours' });
  const ready = await waitForJson<Ev>(me, (e) => e.ev === 'ready', 30_000);
  const found = await waitForJson<Ev>(me, (e) => e.ev === 'found' && e.name === 'Their Mac', 30_000);
  assert.equal(found.peerId, theirId.toLowerCase());
  const upgraded = await waitForJson<Ev>(server, (e) => e.event === 'upgraded', 30_000);
  assert.equal(upgraded.path, '/');
  const peer = await waitForJson<Ev>(server, (e) => e.event === 'peer', 30_000);
  assert.equal(peer.id, ready.id);
  // We sent our id as Apple writes it.
  assert.equal(peer.raw, String(ready.id).toUpperCase());
  const connected = await waitForJson<Ev>(me, (e) => e.ev === 'peer' && e.state === 'connected', 30_000);
  assert.equal(connected.id, theirId.toLowerCase());
  me.writeLine('send hello from peerlink');
  const got = await waitForJson<Ev>(server, (e) => e.event === 'message', 30_000);
  assert.equal(got.text, 'hello from peerlink');
  assert.equal(got.opcode, 2, 'a binary message');
  const echo = await waitForJson<Ev>(me, (e) => e.ev === 'message', 30_000);
  assert.equal(echo.text, 'echo:hello from peerlink');
  me.signal('SIGTERM');
  await me.exited;
  await waitForJson(server, (e: Ev) => e.event === 'closed', 30_000);
});

for (const tls of ['1.2', '1.3'] as const) {
  test(`a Network-framework-style client finds our peerID TXT and dials us: TLS ${tls} PSK, WebSocket on /, ids exchanged, messages both ways`, { skip, ...T }, async (t) => {
    if (!requires(t, 'netns', 'zeroconf') || !lab) return;
    const psk = randomBytes(16).toString('hex');
    const type = `nwfc${tls.replace('.', '')}${process.pid % 1000}`;
    const me = ours({ serviceType: type, psk, name: 'Ours', reply: 'hi back' });
    const ready = await waitForJson<Ev>(me, (e) => e.ev === 'ready', 30_000);
    const theirId = randomUUID().toUpperCase();
    const client = theirs(['client', `_${type}._tcp`, '--psk', psk, '--id', theirId, '--tls', tls, '--identity', 'nwf-app']);
    const found = await waitForJson<Ev>(client, (e) => e.event === 'found', 30_000);
    // Our TXT carries the id as Apple writes it.
    assert.equal(found.peerID, String(ready.id).toUpperCase());
    const upgraded = await waitForJson<Ev>(client, (e) => e.event === 'upgraded', 30_000);
    assert.equal(upgraded.ok, true, client.tail());
    const peer = await waitForJson<Ev>(client, (e) => e.event === 'peer', 30_000);
    assert.equal(peer.id, ready.id);
    const connected = await waitForJson<Ev>(me, (e) => e.ev === 'peer' && e.state === 'connected', 30_000);
    assert.equal(connected.id, theirId.toLowerCase());
    const msg = await waitForJson<Ev>(me, (e) => e.ev === 'message', 30_000);
    assert.equal(msg.text, 'hello from nwf');
    const back = await waitForJson<Ev>(client, (e) => e.event === 'message', 30_000);
    assert.equal(back.text, 'hi back');
    await waitForJson(client, (e: Ev) => e.event === 'closed', 30_000);
    await waitForJson<Ev>(me, (e) => e.ev === 'peer' && e.state === 'notConnected', 30_000);
    me.signal('SIGTERM');
    await me.exited;
  });
}
