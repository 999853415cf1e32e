/**
 * UDP blocked on the path (nft drops every UDP datagram but mDNS into one host): the control
 * connection works, the datagram flow's OPEN/ACCEPT exchange succeeds, but no probe gets
 * through — unreliable sends reject with ERR_DATAGRAM_UNAVAILABLE within `datagrams.openTimeout`
 * (3 s by default; asserted with a generous margin), on both sides, and nothing is sent
 * reliably instead. Once the rule is gone and `retryAfter` has passed, a new flow opens and
 * datagrams arrive.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { requires } from '../../harness/prereq.js';
import { createLab, type Lab } from '../../harness/netns.js';
import { events, waitEv } from './peers.js';

const PEER = fileURLToPath(new URL('./datagram-peer.js', import.meta.url));
let lab: Lab | undefined;
after(async () => {
  await lab?.teardown();
});

test('UDP blocked by nft → unreliable sends reject ERR_DATAGRAM_UNAVAILABLE within the open timeout; recovers when unblocked', { timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft')) return;
  lab = await createLab({ hosts: 2, tag: 'dgb' });
  const opts = { serviceType: 'dgb', interfaces: ['eth0'], security: { mode: 'psk', key: randomBytes(32).toString('hex') }, datagrams: { openTimeout: 3000, retryAfter: 1500 } };
  const a = lab.spawnNode(1, PEER, [JSON.stringify({ ...opts, displayName: 'alpha' })], { stdin: true, label: 'alpha' });
  const b = lab.spawnNode(2, PEER, [JSON.stringify({ ...opts, displayName: 'beta' })], { stdin: true, label: 'beta' });
  await waitEv(a, (e) => e.ev === 'ready', 30_000, 'alpha ready');
  const rb = await waitEv(b, (e) => e.ev === 'ready', 30_000, 'beta ready');
  // beta's host drops every incoming UDP datagram except mDNS.
  for (const args of [
    ['add', 'table', 'inet', 't'],
    ['add', 'chain', 'inet', 't', 'in', '{ type filter hook input priority 0; }'],
    ['add', 'rule', 'inet', 't', 'in', 'udp', 'dport', '!=', '5353', 'drop'],
  ]) {
    const r = await lab.exec(2, 'nft', args);
    assert.equal(r.code, 0, r.stderr);
  }
  a.writeLine(JSON.stringify({ cmd: 'connect', host: '10.77.0.2', port: rb.port }));
  await waitEv(a, (e) => e.ev === 'connected', 30_000, 'alpha connected to beta');
  await waitEv(b, (e) => e.ev === 'peer' && e.state === 'connected', 30_000, 'beta connected to alpha');

  a.writeLine(JSON.stringify({ cmd: 'sendu', text: 'lost in the firewall' }));
  const res = await waitEv(a, (e) => e.ev === 'sendu', 30_000, 'the unreliable send settles');
  t.diagnostic(`unreliable send settled after ${String(res.ms)} ms: ${String(res.code)} (${String(res.message)})`);
  assert.equal(res.ok, false);
  assert.equal(res.code, 'ERR_DATAGRAM_UNAVAILABLE');
  // openTimeout is 3 s; the margin covers a loaded machine, not a different design.
  assert.ok((res.ms as number) < 10_000, `rejected after ${String(res.ms)} ms`);
  // beta's side of the flow failed too (its probes reached alpha, alpha's never reached it).
  const sinceB = b.stdoutLines.length;
  b.writeLine(JSON.stringify({ cmd: 'sendu', text: 'from beta' }));
  const resB = await waitEv(b, (e) => e.ev === 'sendu', 30_000, 'beta unreliable send settles', sinceB);
  assert.equal(resB.code, 'ERR_DATAGRAM_UNAVAILABLE');
  // Never a silent switch to reliable: only the reliable message arrives.
  a.writeLine(JSON.stringify({ cmd: 'send', text: 'reliable' }));
  await waitEv(b, (e) => e.ev === 'message' && e.text === 'reliable', 10_000, 'the reliable message');
  assert.deepEqual(events(b).filter((e) => e.ev === 'message').map((e) => e.text), ['reliable']);

  // Unblocked: after retryAfter a new flow is set up and datagrams arrive.
  const r = await lab.exec(2, 'nft', ['delete', 'table', 'inet', 't']);
  assert.equal(r.code, 0, r.stderr);
  await new Promise((res2) => setTimeout(res2, 1600));
  let arrived = false;
  for (let i = 0; i < 10 && !arrived; i++) {
    const since = a.stdoutLines.length;
    a.writeLine(JSON.stringify({ cmd: 'sendu', text: `after ${i}` }));
    const s = await waitEv(a, (e) => e.ev === 'sendu', 30_000, 'unreliable send after unblocking', since);
    if (s.ok) {
      await new Promise((res2) => setTimeout(res2, 300));
      arrived = events(b).some((e) => e.ev === 'message' && e.mode === 'unreliable');
    } else await new Promise((res2) => setTimeout(res2, 1000));
  }
  assert.ok(arrived, 'a datagram arrived once UDP was unblocked');
  a.writeLine(JSON.stringify({ cmd: 'close' }));
  b.writeLine(JSON.stringify({ cmd: 'close' }));
  await lab.teardown();
  lab = undefined;
});

test('datagrams between two hosts over IPv6 link-local (fe80::…%eth0): the flow binds and connects with the interface scope', { timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  const ll = await createLab({ hosts: 2, tag: 'dgl' });
  try {
    const opts = { serviceType: 'dgl', interfaces: ['eth0'], security: { mode: 'psk', key: randomBytes(32).toString('hex') } };
    const a = ll.spawnNode(1, PEER, [JSON.stringify({ ...opts, displayName: 'alpha' })], { stdin: true, label: 'alpha' });
    const b = ll.spawnNode(2, PEER, [JSON.stringify({ ...opts, displayName: 'beta' })], { stdin: true, label: 'beta' });
    await waitEv(a, (e) => e.ev === 'ready', 30_000, 'alpha ready');
    const rb = await waitEv(b, (e) => e.ev === 'ready', 30_000, 'beta ready');
    const addr = await ll.linkLocal(2);
    a.writeLine(JSON.stringify({ cmd: 'connect', host: `${addr.split("%")[0] ?? addr}%eth0`, port: rb.port }));
    await waitEv(a, (e) => e.ev === 'connected', 30_000, 'alpha connected to beta over link-local');
    let arrived = false;
    for (let i = 0; i < 10 && !arrived; i++) {
      const since = a.stdoutLines.length;
      a.writeLine(JSON.stringify({ cmd: 'sendu', text: `ll ${i}` }));
      const s = await waitEv(a, (e) => e.ev === 'sendu', 30_000, 'unreliable send over link-local', since);
      assert.equal(s.ok, true, `${String(s.code)}: ${String(s.message)}`);
      await new Promise((r) => setTimeout(r, 200));
      arrived = events(b).some((e) => e.ev === 'message' && e.mode === 'unreliable');
    }
    assert.ok(arrived, 'a datagram arrived over link-local');
    a.writeLine(JSON.stringify({ cmd: 'close' }));
    b.writeLine(JSON.stringify({ cmd: 'close' }));
  } finally {
    await ll.teardown();
  }
});
