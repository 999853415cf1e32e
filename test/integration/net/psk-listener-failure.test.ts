/**
 * A PSK listener makes its TLS server for the first connection, not at listen() (docs/memory.md).
 * A setting that tls.createServer refuses and listen() does not check (here an invalid
 * `minVersion`, as an untyped caller could pass) used to be retried — and reported as a
 * rejected client — for every accepted socket. It is reported once: the listener goes to
 * `failed` with ERR_INVALID_ARGUMENT, closes its port and ends `connections()`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Listener, Parameters } from '../../../src/net/index.js';
import type { PeerlinkError } from '../../../src/errors.js';
import type { TlsOptions } from '../../../src/net/options.js';
import { PSK } from './helpers.js';

/** Connects to the port; resolves 'refused' (nobody listens), or 'closed' once the listener drops the socket. */
function knock(port: number): Promise<'refused' | 'closed'> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') resolve('refused');
    });
    s.on('close', () => resolve('closed'));
    s.on('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x01])));
  });
}

test('a PSK listener whose TLS server cannot be made fails once (ERR_INVALID_ARGUMENT, state failed), closes its port and is not retried per client', { timeout: 30_000 }, async () => {
  const tls = { psk: { key: PSK }, minVersion: 'TLSv1.4' } as unknown as TlsOptions;
  const l = new Listener(Parameters.tls(tls, { framer: true }), { host: '127.0.0.1' });
  await l.start();
  assert.equal(l.state, 'ready', 'listen() does not make the PSK TLS server');
  const states: Array<[string, string | undefined]> = [];
  l.on('state', (s, err) => states.push([s, err?.code]));
  const rejected: PeerlinkError[] = [];
  l.on('rejected', (err) => rejected.push(err));
  const it = l.connections();
  const ended = it.next();
  try {
    const first = await knock(l.port);
    assert.equal(first, 'closed');
    assert.deepEqual(states, [['failed', 'ERR_INVALID_ARGUMENT']]);
    assert.equal(l.state, 'failed');
    assert.equal(l.error?.code, 'ERR_INVALID_ARGUMENT');
    assert.match(l.error?.message ?? '', /TLS/);
    assert.deepEqual(await ended, { done: true, value: undefined }, 'connections() ends');
    // Later clients find the port closed: nothing is attempted (or reported) again.
    for (let i = 0; i < 5; i++) assert.equal(await knock(l.port), 'refused');
    assert.deepEqual(states, [['failed', 'ERR_INVALID_ARGUMENT']], 'reported once');
    assert.equal(rejected.length, 0, 'not reported as a rejected client');
  } finally {
    await l.cancel();
  }
});
