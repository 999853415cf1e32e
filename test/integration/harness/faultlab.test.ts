/**
 * The fault lab does what it says, measured with plain sockets between two lab hosts:
 * nft loss drops roughly its share of UDP datagrams (each direction), blockUdp drops UDP
 * but keeps TCP (and mDNS when asked), tbf slows a TCP transfer, a cut makes connect
 * fail until restored, a frozen process stops answering until thawed, the relay delays a
 * round trip by twice its delay and passes a TCP transfer whole, and clear() /
 * teardown leave no qdisc, nft table or frozen process behind.
 */
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createFaultLab, type FaultLab } from '../../harness/faultlab.js';
import { killAllTracked, waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const skip = skipUnless('netns', 'nft');
let fl: FaultLab | undefined;
before(async () => {
  if (!skip) fl = await createFaultLab({ hosts: 2, tag: 'flt' });
});
after(async () => {
  await fl?.lab.teardown();
  await killAllTracked();
});
// A test that fails half-way must not leave its fault to the next one.
afterEach(async () => {
  await fl?.clear();
});

function ready(p: TrackedProcess): Promise<unknown> {
  return waitForJson<{ ready?: boolean }>(p, (o) => o.ready === true, 20_000);
}

/** Sends `count` datagrams h1 → h2 and returns how many arrived. */
async function udpDelivered(f: FaultLab, count: number, port: number): Promise<number> {
  const sink = f.probe(2, 'udp-sink', [port, 60_000]);
  await ready(sink);
  // Neighbours resolved first: a burst to an unresolved address overflows the ARP queue (drops that are not the fault's).
  await f.lab.reach(1, f.lab.host(2).ipv4 ?? '', 10_000);
  const send = f.probe(1, 'udp-send', [f.lab.host(2).ipv4 ?? '', port, count]);
  await waitForJson(send, (o) => typeof o.sent === 'number', 60_000);
  await new Promise((r) => setTimeout(r, 300));
  sink.signal('SIGTERM');
  const r = await waitForJson<{ received: number }>(sink, (o) => typeof o.received === 'number', 20_000);
  return r.received;
}

test('loss: nft numgen drops about the given share, per direction; removed → none', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  const N = 2000;
  // Without a fault nothing is lost on the veth; ≥ 99 % leaves room for a receive buffer overrun on a loaded machine.
  const clean = await udpDelivered(fl, N, 7001);
  assert.ok(clean >= N * 0.99, `no loss before any fault: ${clean}/${N}`);
  const out = await fl.loss(1, 30, { direction: 'out' });
  const got = await udpDelivered(fl, N, 7002);
  t.diagnostic(`30 % out on h1: ${got}/${N} arrived`);
  // Binomial(2000, 0.7): sd ≈ 20; 1200..1600 is ±10 sd.
  assert.ok(got > 1200 && got < 1600, `${got}/${N}`);
  assert.deepEqual(fl.active(), ['loss h1 30% out']);
  const dropped = await fl.dropped(1);
  assert.ok(dropped >= N - got, `nft counted ${dropped} drops for ${N - got} datagrams missing`);
  await out.remove();
  assert.ok((await udpDelivered(fl, N, 7003)) >= N * 0.99, 'loss removed');
  const inbound = await fl.loss(2, 50, { direction: 'in', protocol: 'udp' });
  const got2 = await udpDelivered(fl, N, 7004);
  t.diagnostic(`50 % in on h2: ${got2}/${N} arrived`);
  assert.ok(got2 > 800 && got2 < 1200, `${got2}/${N}`);
  await inbound.remove();
  const tables = await fl.lab.exec(2, 'nft', ['list', 'tables']);
  assert.equal(tables.stdout.trim(), '');
});

test('blockUdp: UDP dropped, TCP kept, mDNS port kept when asked', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  const f = await fl.blockUdp(2, { allowMdns: true });
  assert.equal(await udpDelivered(fl, 200, 7010), 0, 'UDP blocked');
  assert.equal(await udpDelivered(fl, 200, 5353), 200, 'mDNS port kept');
  const sink = fl.probe(2, 'tcp-sink', [7011, 30_000]);
  await ready(sink);
  const send = fl.probe(1, 'tcp-send', [fl.lab.host(2).ipv4 ?? '', 7011, 100_000]);
  const s = await waitForJson<{ sent?: number }>(send, (o) => 'sent' in o || 'error' in o, 20_000);
  assert.equal(s.sent, 100_000, 'TCP still flows');
  await f.remove();
  assert.equal(await udpDelivered(fl, 200, 7012), 200, 'unblocked');
});

test('shape: tbf at 4 Mbit/s makes 2 MB take seconds instead of milliseconds', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  const transfer = async (port: number): Promise<number> => {
    const sink = fl!.probe(2, 'tcp-sink', [port, 60_000]);
    await ready(sink);
    const send = fl!.probe(1, 'tcp-send', [fl!.lab.host(2).ipv4 ?? '', port, 2_000_000]);
    const r = await waitForJson<{ sent?: number; ms: number }>(send, (o) => 'sent' in o || 'error' in o, 60_000);
    assert.equal(r.sent, 2_000_000);
    return r.ms;
  };
  const shaped = await fl.shape(1, { rate: '4mbit', burst: '32kb', latency: '200ms' });
  const qd = await fl.lab.exec(1, 'tc', ['qdisc', 'show', 'dev', 'eth0']);
  assert.match(qd.stdout, /tbf .*rate 4Mbit/);
  const slow = await transfer(7020);
  t.diagnostic(`2 MB at 4 Mbit/s: ${slow} ms`);
  // 16 Mbit at 4 Mbit/s is 4 s; a lower bound cannot be broken by a slow machine.
  assert.ok(slow >= 3000, `${slow} ms`);
  await shaped.remove();
  assert.doesNotMatch((await fl.lab.exec(1, 'tc', ['qdisc', 'show', 'dev', 'eth0'])).stdout, /tbf/);
  // The other direction: shaping the bridge port slows what h2 receives.
  await fl.shape(2, { rate: '4mbit', direction: 'in' });
  const inSlow = await transfer(7021);
  t.diagnostic(`2 MB into h2 at 4 Mbit/s: ${inSlow} ms`);
  assert.ok(inSlow >= 3000, `${inSlow} ms`);
  await fl.unshape(2);
});

test('cut: connect fails while the link is down, works after restore', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  const f = fl;
  const target = f.lab.host(2).ipv4 ?? '';
  for (const where of ['host', 'switch'] as const) {
    await f.cut(where === 'host' ? 1 : 2, where);
    const c = f.probe(1, 'tcp-connect', [target, 9, 2000]);
    const r = await waitForJson<{ connected: boolean; error: string | null }>(c, (o) => 'connected' in o, 20_000);
    assert.equal(r.connected, false, where);
    assert.notEqual(r.error, 'ECONNREFUSED', `${where}: nothing answered`);
    await f.restore(where === 'host' ? 1 : 2);
    const c2 = f.probe(1, 'tcp-connect', [target, 9, 5000]);
    const r2 = await waitForJson<{ connected: boolean; error: string | null }>(c2, (o) => 'connected' in o, 20_000);
    assert.equal(r2.error, 'ECONNREFUSED', `${where}: the closed port answers with RST after restore`);
  }
});

test('freeze: a SIGSTOPped echo server stops replying; thawed, it answers', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  const echo = fl.probe(2, 'udp-echo', [7030, 60_000]);
  await ready(echo);
  const ask = async (): Promise<boolean> => {
    const a = fl!.probe(1, 'udp-ask', [fl!.lab.host(2).ipv4 ?? '', 7030, 3000]);
    return (await waitForJson<{ reply: boolean }>(a, (o) => 'reply' in o, 20_000)).reply;
  };
  assert.equal(await ask(), true);
  fl.freeze(echo);
  assert.equal(await ask(), false, 'frozen');
  assert.ok(fl.active().some((w) => w.startsWith('freeze')));
  await fl.thaw(echo);
  assert.equal(await ask(), true, 'thawed');
  // kill: gone for good.
  await fl.kill(echo);
  assert.equal(echo.running, false);
});

test('relay: fixed delay on a UDP round trip; TCP through it arrives whole; remove() stops it', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  const f = fl;
  const echo = f.probe(2, 'udp-echo', [7050, 60_000]);
  await ready(echo);
  const relay = await f.relay(2, { port: 7051, to: { host: '127.0.0.1', port: 7050 }, delayMs: 150, protocol: 'udp' });
  const ask = async (host: string, port: number): Promise<{ reply: boolean; ms: number }> => {
    const a = f.probe(1, 'udp-ask', [host, port, 5000]);
    return waitForJson<{ reply: boolean; ms: number }>(a, (o) => 'reply' in o, 20_000);
  };
  const viaRelay = await ask(relay.address, relay.port);
  t.diagnostic(`UDP round trip through a 150 ms relay: ${viaRelay.ms} ms`);
  assert.equal(viaRelay.reply, true);
  // Delay in each direction: a round trip takes at least twice it (a lower bound holds on any machine).
  assert.ok(viaRelay.ms >= 290, `${viaRelay.ms} ms`);
  await relay.remove();
  assert.ok(!relay.process.running, 'relay stopped');
  // TCP: a transfer through the relay arrives whole (order kept), and connecting takes ≥ one delayed round trip.
  const sink = f.probe(2, 'tcp-sink', [7052, 60_000]);
  await ready(sink);
  const tcp = await f.relay(2, { port: 7053, to: { host: '127.0.0.1', port: 7052 }, delayMs: 100, jitterMs: 50, protocol: 'tcp' });
  const c = f.probe(1, 'tcp-connect', [tcp.address, tcp.port, 5000]);
  const r = await waitForJson<{ connected: boolean }>(c, (o) => 'connected' in o, 20_000);
  assert.equal(r.connected, true);
  const send = f.probe(1, 'tcp-send', [tcp.address, tcp.port, 1_000_000]);
  const sent = await waitForJson<{ sent?: number; ms: number }>(send, (o) => 'sent' in o || 'error' in o, 30_000);
  assert.equal(sent.sent, 1_000_000);
  // (the tcp-connect probe's empty connection reports first)
  const got = await waitForJson<{ received: number }>(sink, (o) => typeof o.received === 'number' && o.received > 0, 30_000);
  assert.equal(got.received, 1_000_000);
  assert.ok(f.active().some((w) => w.startsWith('relay h2:7053')));
  await tcp.remove();
});

test('clear() undoes everything at once; teardown thaws what is still frozen', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft') || !fl) return;
  await fl.clear(); // whatever an earlier failed test left
  const echo = fl.probe(2, 'udp-echo', [7040, 60_000]);
  await ready(echo);
  await fl.loss(1, 5);
  await fl.blockUdp(2);
  await fl.shape(1, { rate: '10mbit' });
  await fl.cut(2, 'switch');
  fl.freeze(echo);
  assert.equal(fl.active().length, 5);
  await fl.clear();
  assert.deepEqual(fl.active(), []);
  for (const h of [1, 2]) {
    assert.equal((await fl.lab.exec(h, 'nft', ['list', 'tables'])).stdout.trim(), '', `h${h} nft`);
    assert.doesNotMatch((await fl.lab.exec(h, 'tc', ['qdisc', 'show', 'dev', 'eth0'])).stdout, /tbf/, `h${h} tc`);
  }
  assert.equal(await udpDelivered(fl, 100, 7041), 100, 'traffic flows again');
  const state = (await fl.lab.exec(2, 'cat', [`/proc/${echo.pid}/stat`])).stdout.split(' ')[2];
  assert.notEqual(state, 'T', 'thawed');
  // Teardown runs clear() first: a process frozen at the end is thawed before the kill.
  fl.freeze(echo);
  await fl.lab.teardown();
  assert.deepEqual(fl.active(), []);
  await echo.exited;
  // SIGTERM (sent first by teardown) only ends a process that is not stopped.
  assert.equal(echo.exitSignal, 'SIGTERM', 'thawed before the kill');
  fl = undefined;
});
