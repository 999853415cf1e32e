/**
 * Two peers bulk-sending to each other at once, with a tight keepalive and receivers that
 * stall now and then so both transports stay backed up: app data keeps its end-to-end
 * backpressure, and the replies we owe (PONGs, coalesced behind the data) neither deadlock
 * the pair nor get an honest peer dropped (docs/security.md "Replies we owe").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerSession } from '../../../src/session/index.js';
import type { PeerID } from '../../../src/session/peer-id.js';
import { Endpoint } from '../../../src/net/index.js';

const SIZE = 256 * 1024;
const COUNT = 256; // 64 MiB each way

for (const transport of ['framer', 'ws'] as const) {
  test(`bulk both ways (${transport}): both floods complete, nobody is dropped`, { timeout: 180_000 }, async () => {
    const mk = (name: string): PeerSession => new PeerSession({ serviceType: 'bulk2', displayName: name, advertise: false, browse: false, transport, keepaliveInterval: 100, keepaliveTimeout: 1500 });
    const a = mk('A');
    const b = mk('B');
    await a.start();
    await b.start();
    try {
      const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
      for (let i = 0; i < 100 && b.connectedPeers.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const pa = b.connectedPeers[0] as PeerID;
      assert.ok(pa);
      const lost: string[] = [];
      a.on('peer', (_p, s) => s === 'notConnected' && lost.push('a'));
      b.on('peer', (_p, s) => s === 'notConnected' && lost.push('b'));
      const got = { a: 0, b: 0 };
      const stall = (): void => {
        const until = Date.now() + 15;
        while (Date.now() < until) {
          /* a slow receiver: the transports back up */
        }
      };
      a.on('message', () => {
        if (++got.a % 16 === 0) stall();
      });
      b.on('message', () => {
        if (++got.b % 16 === 0) stall();
      });
      const payload = Buffer.alloc(SIZE, 0x5a);
      const flood = async (s: PeerSession, to: PeerID): Promise<void> => {
        for (let i = 0; i < COUNT; i++) await s.send(payload, { to });
      };
      await Promise.all([flood(a, pb), flood(b, pa)]);
      for (let i = 0; i < 500 && (got.a < COUNT || got.b < COUNT); i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got, { a: COUNT, b: COUNT });
      assert.deepEqual(lost, []);
    } finally {
      await Promise.allSettled([a.close(), b.close()]);
    }
  });
}
