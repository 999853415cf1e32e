/**
 * Link quality through the session on 127.0.0.1 (no discovery, nothing multicast): a
 * connected peer is rated from its live connection within a sampling round or two, the
 * measures are sane, traffic shows as throughput, and the rating goes back to 'unknown'
 * (with an event) when the peer leaves; the session's one sampling timer runs only while a
 * peer is connected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PeerSession } from '../../../src/session/index.js';
import type { PeerID } from '../../../src/session/peer-id.js';
import type { LinkQuality, LinkQualityReport } from '../../../src/session/link-quality.js';
import { Endpoint } from '../../../src/net/index.js';
import { SYSTEM_LINK_TIMERS, type LinkTimers } from '../../../src/session/link-monitor.js';

/** The real timers, counted: the session's sampling timer runs only while a peer is connected. */
function countedTimers(): LinkTimers & { active: number } {
  const t = {
    active: 0,
    now: () => SYSTEM_LINK_TIMERS.now(),
    every(fn: () => void, ms: number) {
      t.active++;
      const h = SYSTEM_LINK_TIMERS.every(fn, ms);
      let live = true;
      return {
        cancel() {
          if (live) t.active--;
          live = false;
          h.cancel();
        },
      };
    },
  };
  return t;
}

const KEY = randomBytes(32).toString('hex');

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a connected peer is rated good on loopback, with its measures; unknown once it leaves', { timeout: 60_000 }, async () => {
  const timers = countedTimers();
  const mk = (name: string): PeerSession => new PeerSession({ serviceType: 'lq', displayName: name, advertise: false, browse: false, security: { mode: 'psk', key: KEY }, linkQuality: { interval: 250, timers } });
  const a = mk('A');
  const b = mk('B');
  const events: Array<{ peer: PeerID; quality: LinkQuality; report: LinkQualityReport }> = [];
  a.on('linkQuality', (peer, quality, report) => events.push({ peer, quality, report }));
  await a.start();
  await b.start();
  assert.equal(timers.active, 0, 'no sampling timer without a peer');
  try {
    const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
    assert.equal(a.linkQuality(pb).quality === 'unknown' || events.length > 0, true);
    // A loaded 2-core machine can delay a round; the first one rates the link.
    await until(() => events.length > 0, 10_000, 'first linkQuality event');
    const first = events[0] as (typeof events)[number];
    assert.ok(first.peer.equals(b.peerId));
    assert.notEqual(first.quality, 'unknown');
    // Loopback: the kernel's RTT is microseconds; 'good' allows 50 ms, which even a busy test
    // machine's PING round trips stay under once smoothed.
    await until(() => a.linkQuality(pb).quality === 'good', 20_000, `good (now ${JSON.stringify(a.linkQuality(pb))})`);
    const r = a.linkQuality(pb);
    assert.ok(r.rttMs !== undefined && r.rttMs >= 0 && r.rttMs < 50, `rtt ${r.rttMs}`);
    assert.ok(r.rttVarMs !== undefined && r.rttVarMs >= 0);
    assert.equal(r.stalled, false);
    assert.ok(r.retransmitRate >= 0 && r.retransmitRate < 0.01);
    assert.equal(r.lossRate, 0);
    assert.equal(a.peerInfo(pb)?.linkQuality, 'good');
    // One timer per session (A's and B's), however many peers.
    assert.equal(timers.active, 2);
    // Traffic is throughput: 8 MiB of messages, then a sampling round or two.
    const chunk = Buffer.alloc(64 * 1024, 3);
    for (let i = 0; i < 128; i++) await a.send(chunk, { to: pb });
    await until(() => a.linkQuality(pb).throughputBps > 1_000_000, 10_000, `throughput (now ${JSON.stringify(a.linkQuality(pb))})`);
    const mark = events.length;
    await b.close();
    await until(() => events.length > mark, 15_000, 'unknown after the peer left');
    assert.equal(events.at(-1)?.quality, 'unknown');
    assert.equal(a.linkQuality(pb).quality, 'unknown');
    assert.equal(a.linkQuality(pb).rttMs, undefined);
    assert.equal(a.peerInfo(pb)?.linkQuality, 'unknown');
    assert.equal(timers.active, 0, 'the sampling timers go with the last peer');
  } finally {
    await a.close();
    await b.close();
  }
  assert.equal(timers.active, 0);
});
