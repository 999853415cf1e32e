/**
 * Hostile peers, stream offers (issue "Hostile peers" item 3): a peer floods STREAM_OFFERs —
 * plain ones, whose tokens the victim keeps, and dial-back ones, each of which makes the victim
 * dial out — and opens more streams than it should. Budgets (docs/security.md "Streams"):
 * streamOffersPerPeer 32, dialBacksPerPeer 8, streamsPerPeer 64; over them an offer is refused
 * with STREAM_REJECT, and a peer that keeps offering while refused is disconnected. Another
 * peer opens its stream all the while.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { cleanup, frame, FrameReader, MiB, ping, rawConnect, rawPeer, streamBind, streamOffer, type Victim, startVictim } from './harness.js';
import { until } from '../harness/proc.js';

after(cleanup);

const servers = new Set<Server>();
after(() => {
  for (const s of servers) s.close();
});

/** Resolves once the victim answered a PING sent after everything else on `socket` (it has read it all), or the socket closed. */
async function drained(socket: Socket, reader: FrameReader, timeoutMs = 60_000): Promise<void> {
  const seq = 0x7fff0000 + Math.floor(Math.random() * 0xffff);
  if (!socket.destroyed) socket.write(frame(ping(seq)));
  await until(() => socket.destroyed || reader.ofType(0x05).some((m) => m.readUInt32BE(1) === seq), timeoutMs, 'the victim to read the flood');
}

/** An honest raw peer opens one stream the direct way (offer, then STREAM_BIND on a new connection) and gets STREAM_BOUND. */
async function honestStream(v: Victim, name: string): Promise<void> {
  const honest = await rawPeer(v, { displayName: 'honest' });
  const token = randomBytes(16);
  honest.socket.write(frame(streamOffer({ token, name })));
  const s = await rawConnect(v.port);
  const r = new FrameReader(s);
  s.write(frame(streamBind(honest.peerId, token)));
  await until(() => r.messages.length > 0 || s.destroyed, 15_000, 'an answer to the honest STREAM_BIND');
  assert.equal(r.messages[0]?.[0], 0x21, 'the honest peer got STREAM_BOUND');
  await until(() => v.events('stream').some((e) => e.name === name), 10_000, 'the victim delivered the honest stream');
}

test('stream offers: a flood of 20,000 offers with 4 KiB meta costs the victim ≤ 64 MiB; the flooder is refused, then disconnected; an honest peer opens a stream meanwhile', async () => {
  const v = await startVictim();
  const atk = await rawPeer(v, { displayName: 'flooder' });
  await v.reset();
  const before = await v.cost();
  const meta = randomBytes(4096);
  // ~80 MiB of offers, written in slices so the attacker's own buffers stay small.
  let sent = 0;
  const flood = (async () => {
    for (let batch = 0; batch < 200 && !atk.socket.destroyed; batch++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 100; i++) frames.push(frame(streamOffer({ name: `f${sent++}`, meta })));
      if (!atk.socket.write(Buffer.concat(frames))) await new Promise<void>((r) => (atk.socket.destroyed ? r() : atk.socket.once('drain', () => r()).once('close', () => r())));
    }
  })();
  await honestStream(v, 'honest-during-flood');
  await flood;
  await drained(atk.socket, atk.reader);
  const cost = await v.cost();
  const grew = Math.max(cost.peakRss, cost.rss) - before.rss;
  assert.ok(grew <= 64 * MiB, `victim RSS grew by ${(grew / MiB).toFixed(1)} MiB (bound 64 MiB)`);
  assert.ok((cost.stats.budgets.streamOffersPerPeer ?? 0) > 0, 'refusals counted under streamOffersPerPeer');
  assert.ok(atk.reader.ofType(0x08).length > 0, 'the flooder got STREAM_REJECTs before it was cut off');
  assert.ok(atk.socket.destroyed || atk.reader.ofType(0x03).length > 0, 'a peer that keeps flooding is disconnected');
  assert.ok(v.events('peer').some((e) => e.name === 'honest' && e.state === 'connected'));
  assert.ok(!v.events('peer').some((e) => e.name === 'honest' && e.state === 'notConnected'), 'the honest peer was not affected');
});

test('stream offers: a few over the budget are refused one by one with STREAM_REJECT; the peer stays connected', async () => {
  const v = await startVictim();
  const p = await rawPeer(v, { displayName: 'eager' });
  const tokens = Array.from({ length: 40 }, () => randomBytes(16));
  p.socket.write(Buffer.concat(tokens.map((token, i) => frame(streamOffer({ token, name: `s${i}` })))));
  await drained(p.socket, p.reader);
  await until(() => p.reader.ofType(0x08).length >= 8, 5000, '8 STREAM_REJECTs');
  const rejected = p.reader.ofType(0x08).map((m) => m.subarray(1, 17).toString('hex'));
  assert.deepEqual(rejected, tokens.slice(32).map((t) => t.toString('hex')), 'the offers past 32 were refused, the first 32 kept');
  assert.ok(!p.socket.destroyed && p.reader.ofType(0x03).length === 0, 'no BYE: refusing an offer does not drop the peer');
  const c = await v.cost();
  assert.equal(c.stats.budgets.streamOffersPerPeer, 8);
  // A kept offer still works.
  const s = await rawConnect(v.port);
  const r = new FrameReader(s);
  s.write(frame(streamBind(p.peerId, tokens[0] as Buffer)));
  await until(() => r.messages.length > 0 || s.destroyed, 10_000, 'STREAM_BOUND');
  assert.equal(r.messages[0]?.[0], 0x21);
});

/** A listener that accepts connections and holds them without a word (the attacker's sink for dial-backs). */
async function holdingListener(): Promise<{ port: number; open: () => number; peak: () => number }> {
  let open = 0;
  let peak = 0;
  const server = createServer((c) => {
    open++;
    peak = Math.max(peak, open);
    c.on('error', () => undefined);
    c.on('close', () => open--);
  });
  servers.add(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { port: addr.port, open: () => open, peak: () => peak };
}

/** A listener that answers STREAM_BIND with STREAM_BOUND: an honest peer's side of a dial-back. */
async function bindingListener(): Promise<{ port: number; bound: () => number }> {
  let bound = 0;
  const server = createServer((c) => {
    c.on('error', () => undefined);
    const r = new FrameReader(c);
    const check = setInterval(() => {
      if (r.ofType(0x20).length > 0) {
        clearInterval(check);
        bound++;
        c.write(frame(Buffer.from([0x21])));
      }
    }, 10);
    c.on('close', () => clearInterval(check));
  });
  servers.add(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { port: addr.port, bound: () => bound };
}

test('dial-back offers: 200 of them make the victim hold at most dialBacksPerPeer (8) connections to the attacker; an honest dial-back stream still opens', async () => {
  const v = await startVictim();
  const sink = await holdingListener();
  const atk = await rawPeer(v, { displayName: 'reflector', listenPort: sink.port });
  atk.socket.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => frame(streamOffer({ name: `d${i}`, dialBack: true })))));
  await drained(atk.socket, atk.reader);
  // The victim's dials take a moment; give them time to pile up if nothing stops them.
  await new Promise((r) => setTimeout(r, 1500));
  const during = await v.cost();
  const honestSide = await bindingListener();
  const honest = await rawPeer(v, { displayName: 'honest', listenPort: honestSide.port });
  honest.socket.write(frame(streamOffer({ name: 'honest-dial-back', dialBack: true })));
  await until(() => v.events('stream').some((e) => e.name === 'honest-dial-back'), 10_000, 'the honest dial-back stream');
  assert.ok(sink.peak() <= 8, `the attacker's listener saw ${sink.peak()} connections at once from the victim (bound 8)`);
  assert.ok(during.outgoing <= 8, `the victim held ${during.outgoing} outgoing connections (bound 8)`);
  assert.ok((during.stats.budgets.dialBacksPerPeer ?? 0) > 0, 'refusals counted under dialBacksPerPeer');
  assert.equal(honestSide.bound(), 1);
});

test('dial-backs are new dials of the session: paced by dialsPerSecond, and the deferrals counted', async () => {
  const v = await startVictim({ budgets: { dialsPerSecond: 2 } });
  const sink = await holdingListener();
  const atk = await rawPeer(v, { displayName: 'pacer', listenPort: sink.port });
  atk.socket.write(Buffer.concat(Array.from({ length: 8 }, (_, i) => frame(streamOffer({ name: `p${i}`, dialBack: true })))));
  await new Promise((r) => setTimeout(r, 700));
  // a full bucket (2) at once, then 2 a second: at most 4 within 0.7 s, not all 8
  assert.ok(sink.peak() <= 4, `${sink.peak()} dial-backs within 0.7 s at dialsPerSecond 2`);
  const c = await v.cost();
  assert.ok((c.stats.budgets.dialsPerSecond ?? 0) >= 1, `deferrals counted: ${JSON.stringify(c.stats.budgets)}`);
  await until(() => sink.peak() >= 8, 10_000, 'every dial-back made in the end');
});

test('open streams: a peer gets at most streamsPerPeer (64) streams; the 65th is refused', async () => {
  const v = await startVictim();
  const p = await rawPeer(v, { displayName: 'greedy' });
  const held: Socket[] = [];
  let bound = 0;
  let refused = 0;
  for (let i = 0; i < 70; i++) {
    const token = randomBytes(16);
    p.socket.write(frame(streamOffer({ token, name: `o${i}` })));
    const s = await rawConnect(v.port);
    held.push(s);
    const r = new FrameReader(s);
    s.write(frame(streamBind(p.peerId, token)));
    await until(() => r.messages.length > 0 || s.destroyed || p.reader.ofType(0x08).some((m) => m.subarray(1, 17).equals(token)), 15_000, `an answer for stream ${i}`);
    if (r.messages[0]?.[0] === 0x21) bound++;
    else refused++;
  }
  assert.equal(bound, 64, `${bound} streams bound`);
  assert.equal(refused, 6);
  const c = await v.cost();
  assert.equal(c.stats.streams, 64);
  assert.ok((c.stats.budgets.streamsPerPeer ?? 0) >= 6);
  assert.ok(!p.socket.destroyed, 'the peer stays connected');
});
