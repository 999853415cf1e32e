/**
 * Two peers on two namespace hosts find each other over mDNS on eth0, connect once over
 * TLS-PSK, exchange messages in order and a stream; a third host with the wrong key never
 * becomes connected and both sides are told ERR_PSK_MISMATCH.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { requires } from '../../harness/prereq.js';
import { createLab, type Lab } from '../../harness/netns.js';
import { startPeers, waitEv, events, eventually, fullMesh, status } from './peers.js';

// Every lab made here is torn down at the end, also when a subtest failed before its own
// teardown (one variable would be overwritten by the next subtest, leaking the first lab's
// peers and keeping the file alive until the runner's timeout).
const labs = new Set<Lab>();
after(async () => {
  await Promise.all([...labs].map((l) => l.teardown()));
});

for (const transport of ['framer', 'ws'] as const) {
  test(`two hosts (${transport}): discover, connect once, messages in order, stream; wrong PSK never connects`, { timeout: 180_000 }, async (t) => {
    if (!requires(t, 'netns')) return;
    const lab = await createLab({ hosts: 3, tag: `s2${transport[0]}` });
    labs.add(lab);
    const key = randomBytes(32).toString('hex');
    const wrong = randomBytes(32).toString('hex');
    const base = { service: 'pltwo', interfaces: ['eth0'], transport };
    const a = startPeers(lab, 1, { ...base, names: ['alpha'], psk: key });
    const b = startPeers(lab, 2, { ...base, names: ['beta'], psk: key, discoveryInfo: { role: 'receiver' } });
    const c = startPeers(lab, 3, { ...base, names: ['gamma'], psk: wrong });
    const ra = await waitEv(a, (e) => e.ev === 'ready', 30_000, 'alpha ready');
    const rb = await waitEv(b, (e) => e.ev === 'ready', 30_000, 'beta ready');
    await waitEv(c, (e) => e.ev === 'ready', 30_000, 'gamma ready');

    await eventually([{ p: a, n: 1 }, { p: b, n: 1 }], fullMesh([ra.id as string, rb.id as string]), 30_000);
    // The wrong key is reported (on the dialling side and/or the accepting side) …
    await waitEv(c, (e) => e.ev === 'peerError' && e.code === 'ERR_PSK_MISMATCH', 30_000, 'gamma told ERR_PSK_MISMATCH');
    await waitEv(a, (e) => e.ev === 'peerError' && e.code === 'ERR_PSK_MISMATCH', 30_000, 'alpha told ERR_PSK_MISMATCH');

    // Discovery info (TXT app keys) reaches the other side; the session's own keys are not in it.
    const found = await waitEv(a, (e) => e.ev === 'found' && e.instance === 'beta', 10_000, 'alpha found beta');
    assert.deepEqual(found.discoveryInfo, { role: 'receiver' });
    assert.equal(found.compatible, true);

    // Messages, in order.
    a.writeLine(JSON.stringify({ cmd: 'send', count: 500, size: 100 }));
    await waitEv(a, (e) => e.ev === 'sent', 30_000, 'alpha sent');
    let rx: Record<string, { count: number; ordered: boolean }> = {};
    for (let i = 0; i < 50; i++) {
      const since = b.stdoutLines.length;
      b.writeLine(JSON.stringify({ cmd: 'recv' }));
      const r = await waitEv(b, (e) => e.ev === 'recv', 10_000, 'recv', since);
      rx = r.from as typeof rx;
      if (rx[ra.id as string]?.count === 500) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.equal(rx[ra.id as string]?.count, 500);
    assert.equal(rx[ra.id as string]?.ordered, true);

    // A stream of 20 MB.
    a.writeLine(JSON.stringify({ cmd: 'stream', from: 'alpha', to: rb.id, bytes: 20_000_000 }));
    const got = await waitEv(b, (e) => e.ev === 'stream-recv', 60_000, 'beta stream');
    assert.equal(got.bytes, 20_000_000);
    await waitEv(a, (e) => e.ev === 'stream-done', 30_000, 'alpha stream done');

    // gamma never connected to anyone, and nobody to gamma.
    for (const p of [a, b, c]) {
      const connectedToGamma = events(p).filter((e) => e.ev === 'peer' && e.state === 'connected' && (e.peerName === 'gamma' || e.name === 'gamma'));
      assert.deepEqual(connectedToGamma, [], p.label);
    }
    const [sc] = await status(c, 1);
    assert.deepEqual(sc?.connected, []);
    // One connected event per side for the pair (no duplicate connections, no flapping).
    assert.equal(events(a).filter((e) => e.ev === 'peer' && e.state === 'connected').length, 1);
    assert.equal(events(b).filter((e) => e.ev === 'peer' && e.state === 'connected').length, 1);
    for (const p of [a, b, c]) p.writeLine(JSON.stringify({ cmd: 'close' }));
    await Promise.all([a, b, c].map((p) => waitEv(p, (e) => e.ev === 'closed', 15_000, 'closed')));
    labs.delete(lab);
    await lab.teardown();
  });
}
