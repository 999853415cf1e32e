/**
 * The adversarial harness against a real victim: a hand-built HELLO gets a HELLO back and the
 * victim reports the peer connected, and cost() reports its resources. If this fails, the
 * harness's byte layouts have drifted from docs/session.md and every adversarial test is void.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, frame, data, rawPeer, startVictim } from './harness.js';
import { until } from '../harness/proc.js';

after(cleanup);

test('harness: a hand-built HELLO is answered and the raw peer becomes connected; DATA arrives as a message', async () => {
  const v = await startVictim();
  const { socket: s } = await rawPeer(v, { displayName: 'raw' });
  await until(() => v.events('peer').some((e) => e.state === 'connected' && e.name === 'raw'), 10_000, 'peer connected');
  s.write(frame(data('hi there')));
  await until(() => v.events('message').some((e) => e.text === 'hi there'), 10_000, 'message delivered');
  const c = await v.cost();
  assert.ok(c.rss > 0 && c.fds > 0);
  assert.equal(c.incoming, 1);
  assert.equal(c.outgoing, 0);
  assert.equal(c.stats.controlConnections, 1);
});
