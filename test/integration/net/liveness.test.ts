// A peer frozen with SIGSTOP: its kernel keeps ACKing, so only application keepalives notice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Parameters } from '../../../src/net/index.js';
import { dial, nextState } from './helpers.js';
import { until } from './cli-proc.js';

const PEER = fileURLToPath(new URL('./fixtures/net-peer.js', import.meta.url));

test('a SIGSTOPped peer is detected by framer keepalives within the window', async () => {
  const child = spawn(process.execPath, [PEER, 'listen', '0', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    const { port } = JSON.parse(line) as { port: number };
    const c = await dial(port, Parameters.tcp({ framer: true, keepalive: { interval: 200, timeout: 1000 } }));
    await c.send('alive?');
    assert.equal(String(await c.receiveMessage()), 'alive?');
    // let a few keepalive round trips happen while the peer is alive: they give the RTT estimate
    await until(() => (c.report().rtt?.samples ?? 0) >= 1, 'a keepalive round trip');
    child.kill('SIGSTOP');
    const t0 = Date.now();
    assert.equal(await nextState(c, 'failed', 'cancelled'), 'failed');
    assert.equal(c.error?.code, 'ERR_KEEPALIVE_TIMEOUT');
    // detected after the timeout, not minutes later (generous bound for a busy machine)
    assert.ok(Date.now() - t0 >= 900 && Date.now() - t0 < 15_000, `${Date.now() - t0} ms`);
    const rtt = c.report().rtt;
    assert.ok(rtt && rtt.samples >= 1 && rtt.latest >= 0, 'an RTT estimate from the keepalives');
    assert.ok(c.counters.keepalivesSent >= 1);
  } finally {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});
