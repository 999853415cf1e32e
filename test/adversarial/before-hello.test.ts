/**
 * Before HELLO (docs/security.md "Before HELLO"): a connection that has not identified itself
 * may send a first frame of at most `budgets.firstFrameBytes` (a HELLO is under 1 KiB, a
 * STREAM_BIND 34 bytes), and the victim holds at most `unidentifiedConnections` of them in
 * total and `unidentifiedPerAddress` from one source address; further ones are closed at once
 * and counted in stats.budgets.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { cleanup, closedWithin, data, frame, hello, MiB, rawConnect, rawPeer, startVictim, type Victim } from './harness.js';
import { sleep, until } from '../harness/proc.js';

after(cleanup);

/**
 * Connects from `local`, or resolves undefined when the victim resets the connection before
 * 'connect' is seen (a refusal at TCP accept can beat it: ECONNRESET on connect).
 */
async function connectOrReset(port: number, local: string): Promise<Socket | undefined> {
  try {
    return await rawConnect(port, '127.0.0.1', local);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') return undefined;
    throw err;
  }
}

/**
 * 120 connections from eight addresses of `net` (127.0.x.1–8), each first sent `prefix(i)` (if
 * any), then a length word announcing ~4 MiB and nearly all of that body; after 3 s, the victim's
 * peak RSS growth is checked (≤ 64 MiB) and the sockets are closed.
 */
async function floodPartialFrames(t: { diagnostic: (m: string) => void }, v: Victim, net: string, prefix?: (i: number) => Buffer): Promise<void> {
  await v.reset();
  const before = await v.cost();
  const header = Buffer.alloc(4);
  header.writeUInt32BE(4 * MiB - 16);
  // One body shared by every socket (write() keeps a reference): the attacker does not need 400 MB.
  const body = Buffer.alloc(4 * MiB - 64, 0x41);
  const socks: Socket[] = [];
  for (let i = 0; i < 120; i++) {
    const s = await rawConnect(v.port, '127.0.0.1', `127.0.${net}.${1 + (i % 8)}`);
    if (prefix) s.write(prefix(i));
    s.write(header);
    s.write(body);
    socks.push(s);
  }
  await sleep(3000);
  const after = await v.cost();
  const growth = after.peakRss - before.rss;
  t.diagnostic(`victim RSS ${(before.rss / MiB).toFixed(1)} → peak ${(after.peakRss / MiB).toFixed(1)} MiB (+${(growth / MiB).toFixed(1)}); budgets ${JSON.stringify(after.stats.budgets)}`);
  assert.ok(growth <= 64 * MiB, `victim RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  for (const s of socks) s.destroy();
}

test('100 unidentified connections each announcing a ~4 MiB first frame: victim memory bounded', { timeout: 120_000 }, async (t) => {
  const v = await startVictim();
  await floodPartialFrames(t, v, '1');
  // A real peer still gets in and is heard.
  const p = await rawPeer(v, { displayName: 'honest' });
  p.socket.write(frame(data('after the flood')));
  await until(() => v.events('message').some((e) => e.text === 'after the flood'), 10_000, 'message after the flood');
});

test('unidentified connections: the 65th from one address and the 257th in total are closed at once, and counted', { timeout: 120_000 }, async () => {
  const v = await startVictim();
  // 64 from 127.0.0.2 stay; the 65th is closed at once.
  const same: Socket[] = [];
  for (let i = 0; i < 64; i++) same.push(await rawConnect(v.port, '127.0.0.1', '127.0.0.2'));
  const extra = await connectOrReset(v.port, '127.0.0.2');
  assert.equal(await closedWithin(extra, 2000), true, 'the 65th connection from 127.0.0.2 is closed at once');
  assert.equal(same.filter((s) => s.destroyed).length, 0, 'the first 64 stay open');
  let c = await v.cost();
  assert.ok((c.stats.budgets.unidentifiedPerAddress ?? 0) >= 1, `counted: ${JSON.stringify(c.stats.budgets)}`);
  // 192 more from four other addresses (48 each, under the per-address budget): 256 in all.
  const others: Socket[] = [];
  for (let a = 3; a <= 6; a++) for (let i = 0; i < 48; i++) others.push(await rawConnect(v.port, '127.0.0.1', `127.0.0.${a}`));
  const over = await connectOrReset(v.port, '127.0.0.7');
  assert.equal(await closedWithin(over, 2000), true, 'the 257th unidentified connection is closed at once');
  assert.equal([...same, ...others].filter((s) => s.destroyed).length, 0, 'the first 256 stay open');
  c = await v.cost();
  assert.ok((c.stats.budgets.unidentifiedConnections ?? 0) >= 1, `counted: ${JSON.stringify(c.stats.budgets)}`);
  // Once they go, a new connection is accepted again (the count is released).
  for (const s of [...same, ...others]) s.destroy();
  await until(async () => (await v.cost()).incoming === 0, 10_000, 'the unidentified connections closed');
  const p = await rawPeer(v, { displayName: 'late' });
  p.socket.write(frame(data('accepted again')));
  await until(() => v.events('message').some((e) => e.text === 'accepted again'), 10_000, 'a peer accepted after the flood');
});

test('a first frame larger than firstFrameBytes is refused; a HELLO within it is accepted and the limit is raised after it', { timeout: 60_000 }, async () => {
  const v = await startVictim();
  const s = await rawConnect(v.port);
  const big = Buffer.alloc(4);
  big.writeUInt32BE(2049);
  s.write(big);
  assert.equal(await closedWithin(s, 3000), true, 'a 2049-byte first frame closes the connection at once');
  // After HELLO, a message far above 2 KiB is delivered.
  const p = await rawPeer(v, { displayName: 'big' });
  const text = 'x'.repeat(100_000);
  p.socket.write(frame(data(text)));
  await until(() => v.events('message').some((e) => e.bytes === 100_000), 10_000, 'a 100 kB message after HELLO');
});

test('connections still in the TLS handshake, and HELLO\'d ones not yet accepted, count against the unidentified budgets', { timeout: 120_000 }, async () => {
  // TLS-PSK victim: raw TCP connections that never send a ClientHello.
  const v = await startVictim({ security: { mode: 'psk', key: '00112233445566778899aabbccddeeff' } });
  const silent: Socket[] = [];
  for (let i = 0; i < 64; i++) silent.push(await rawConnect(v.port, '127.0.0.1', '127.0.0.9'));
  const extra = await connectOrReset(v.port, '127.0.0.9');
  assert.equal(await closedWithin(extra, 2000), true, 'the 65th connection in the TLS handshake from one address is closed at once');
  assert.equal(silent.filter((s) => s.destroyed).length, 0, 'the first 64 stay (until the handshake timeout)');
  const c = await v.cost();
  assert.ok((c.stats.budgets.unidentifiedPerAddress ?? 0) >= 1, `counted: ${JSON.stringify(c.stats.budgets)}`);
  for (const s of silent) s.destroy();

  // Plain victim: HELLOs from ids larger than the victim's (it waits for our WELCOME, which never comes).
  const w = await startVictim();
  const held: Socket[] = [];
  for (let i = 0; i < 64; i++) {
    const s = await rawConnect(w.port, '127.0.0.1', '127.0.0.10');
    // ff…ff<i>: larger than any UUID v4 (its byte 6 is 0x4X), distinct per connection
    const id = Buffer.alloc(16, 0xff);
    id[15] = i;
    s.write(frame(hello({ peerId: id })));
    held.push(s);
  }
  await new Promise((r) => setTimeout(r, 300));
  const over = await connectOrReset(w.port, '127.0.0.10');
  assert.equal(await closedWithin(over, 2000), true, 'a 65th connection from an address with 64 HELLOs waiting for WELCOME is closed at once');
  for (const s of held) s.destroy();
});

test('HELLO, then a ~4 MiB frame before being accepted (either side deciding): refused at its length, victim memory bounded', { timeout: 120_000 }, async (t) => {
  const v = await startVictim();
  // half with ids above the victim's (it waits for our WELCOME), half below (it decides, but we
  // have not read its WELCOME: a frame it did not grant yet)
  await floodPartialFrames(t, v, '2', (i) => {
    const id = i % 2 === 0 ? Buffer.alloc(16, 0xff) : Buffer.alloc(16, 0);
    id[14] = i;
    id[15] = 1;
    return frame(hello({ peerId: id, displayName: `h${i}` }));
  });
  // Accepted peers still get the session's limit at once: a 100 kB message right after WELCOME.
  const p = await rawPeer(v, { displayName: 'big-after-welcome' });
  p.socket.write(frame(data('y'.repeat(100_000))));
  await until(() => v.events('message').some((e) => e.bytes === 100_000), 10_000, 'a 100 kB message after WELCOME');
});
