// A sender faster than its receiver: both processes' queues and memory stay bounded (asserted
// on sizes, never on time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Connection, Listener, Parameters } from '../../../src/net/index.js';
import { delay, dial, PSK } from './helpers.js';

const MESSAGE = 64 * 1024;
const TOTAL = 48 * 1024 * 1024;
/** Receive queue limit for messages (4 MiB) plus one message in flight. */
const RECEIVE_BOUND = 4 * 1024 * 1024 + MESSAGE + 1024;
/** What send() may have accepted but the socket not yet written: its high-water mark, one batch and one message. */
const SEND_BOUND = 512 * 1024;

const PEER = fileURLToPath(new URL('./fixtures/net-peer.js', import.meta.url));
/** 512 MiB through queues of a few MiB: memory that grew with the transfer would show. */
const FLOOD = 512 * 1024 * 1024;
const RSS_BOUND = 160 * 1024 * 1024;

for (const [name, stack, params] of [
  ['tcp+framer', 'tcp', Parameters.tcp({ framer: true })],
  ['tls(psk)+framer', 'tls', Parameters.tls({ psk: { key: PSK } }, { framer: true })],
  ['ws', 'ws', Parameters.ws()],
] as const) {
  test(`flow control, ${name}: a sender process faster than this receiver — both stay bounded`, async (t) => {
    const l = new Listener(params, { host: '127.0.0.1' });
    const accepted = new Promise<Connection>((r) => l.once('connection', r));
    await l.start();
    const child = spawn(process.execPath, [PEER, 'flood', String(l.port), stack, String(FLOOD)], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const report = new Promise<{ maxSend: number; rssGrowth: number }>((resolve) => createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line) as { maxSend: number; rssGrowth: number })));
      const receiver = await accepted;
      const rss0 = process.memoryUsage().rss;
      let maxRecv = 0;
      let maxRss = rss0;
      let got = 0;
      while (got < FLOOD) {
        const m = await receiver.receiveMessage();
        assert.ok(m, 'connection ended early');
        got += m.length;
        maxRecv = Math.max(maxRecv, receiver.bufferedReceiveBytes + m.length);
        // slow reader: a pause every 64 messages
        if ((got / MESSAGE) % 64 === 0) {
          maxRss = Math.max(maxRss, process.memoryUsage().rss);
          await delay(5);
        }
      }
      const sender = await report;
      t.diagnostic(`receiver: max queue ${maxRecv} B, RSS growth ${maxRss - rss0} B; sender: max send queue ${sender.maxSend} B, RSS growth ${sender.rssGrowth} B`);
      assert.ok(maxRecv <= RECEIVE_BOUND, `receive queue reached ${maxRecv}`);
      assert.ok(maxRss - rss0 <= RSS_BOUND, `receiver RSS grew by ${maxRss - rss0}`);
      assert.ok(sender.maxSend <= SEND_BOUND, `send queue reached ${sender.maxSend}`);
      assert.ok(sender.rssGrowth <= RSS_BOUND, `sender RSS grew by ${sender.rssGrowth}`);
      receiver.cancel();
    } finally {
      child.kill('SIGKILL');
      await l.cancel();
    }
  });
}

test('flow control, byte stream via stream(): pipe backpressure both ways', async () => {
  const p = Parameters.tcp();
  const l = new Listener(p, { host: '127.0.0.1' });
  const accepted = new Promise<Connection>((r) => l.once('connection', r));
  await l.start();
  const sender = await dial(l.port, p);
  const receiver = await accepted;
  const out = sender.stream();
  const inp = receiver.stream();
  let maxWritable = 0;
  let maxReadable = 0;
  const chunk = Buffer.alloc(MESSAGE, 1);
  const writing = (async () => {
    for (let sent = 0; sent < TOTAL; sent += MESSAGE) {
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      maxWritable = Math.max(maxWritable, out.writableLength);
    }
    out.end();
  })();
  let got = 0;
  for await (const b of inp) {
    got += (b as Buffer).length;
    maxReadable = Math.max(maxReadable, inp.readableLength);
    if (got % (4 * 1024 * 1024) < MESSAGE) await delay(5);
  }
  await writing;
  assert.equal(got, TOTAL);
  assert.ok(maxWritable <= out.writableHighWaterMark + MESSAGE, `writable reached ${maxWritable}`);
  assert.ok(maxReadable <= inp.readableHighWaterMark + MESSAGE, `readable reached ${maxReadable}`);
  // The receiver's side is half-open (it got FIN, never sent its own): a connection stays ready
  // until cancelled, and on Node 24 its socket then keeps the process alive.
  inp.end();
  sender.cancel();
  receiver.cancel();
  await l.cancel();
});

test('flow control, udp: a reader that falls behind loses datagrams beyond its queue, counted', async () => {
  const l = new Listener(Parameters.udp({ receiveQueueLimit: 100, idleTimeout: 0 }), { host: '127.0.0.1' });
  const accepted = new Promise<Connection>((r) => l.once('connection', r));
  await l.start();
  const sender = await dial(l.port, Parameters.udp());
  for (let i = 0; i < 2000; i++) await sender.send(Buffer.alloc(100, i & 0xff));
  const receiver = await accepted;
  await delay(200);
  let queued = 0;
  while (receiver.tryReceiveMessage()) queued++;
  assert.ok(queued <= 100, `${queued} queued`);
  // what was neither queued nor dropped by us was lost in the kernel: both are bounded
  assert.ok(receiver.counters.dropped + queued <= 2000);
  assert.ok(receiver.counters.dropped > 0);
  sender.cancel();
  await l.cancel();
  receiver.cancel(); // the last flow closes the listener's socket
});

test('sends waiting for drain settle after a final send (Node emits no drain once the socket is ending)', async () => {
  for (const p of [Parameters.tcp({ framer: true }), Parameters.tls({ psk: { key: PSK } }, { framer: true })]) {
    const l = new Listener(p, { host: '127.0.0.1' });
    const accepted = new Promise<Connection>((resolve) => l.once('connection', resolve));
    await l.start();
    const c = await dial(l.port, p);
    const server = await accepted;
    // 24 MiB queued behind a receiver that is not reading yet (its queue pauses at 4 MiB).
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 24; i++) sends.push(c.send(Buffer.alloc(1 << 20, i)));
    sends.push(c.send(Buffer.alloc(0), { final: true }));
    await delay(100);
    let got = 0;
    for (let m = await server.receiveMessage(); m !== null; m = await server.receiveMessage()) got += m.length;
    assert.equal(got, 24 << 20);
    const settled = await Promise.race([Promise.allSettled(sends).then(() => 'settled'), delay(5000).then(() => 'stuck')]);
    assert.equal(settled, 'settled', 'every send promise settled once the data was flushed');
    server.cancel();
    c.cancel();
    await l.cancel();
  }
});
