/**
 * A client that resets or closes in the middle of a TLS-PSK handshake is no wrong key: the
 * listener finds a wrong key itself (the TLS 1.3 binder, or the TLS 1.2 client Finished, fails
 * to verify) before the client could judge ours. Reported as a wrong key, every dial that gave
 * up at its timeout (48 starved peers: 551 of them) read as ERR_PSK_MISMATCH to the app.
 *
 * The client here is Node's own TLS with the right key, behind a raw TCP relay that forwards its
 * ClientHello and, as soon as the listener answers, resets (or closes) the listener's side. The
 * other way round, a dial whose listener ends the handshake after its first record (what a
 * listener's handshake timer firing on a starved host does) is a reset too, retried as one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Socket, type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Connection, Endpoint, Parameters } from '../../../src/net/index.js';
import { echoListener, nextState, PSK } from './helpers.js';

const PSK_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:ECDHE-PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256';

/** Relays one client to `port` and ends the upstream side the moment the listener answers. */
async function cuttingRelay(port: number, how: 'reset' | 'close'): Promise<{ port: number; cut: Promise<number>; close: () => void }> {
  let cutAt: (n: number) => void = () => undefined;
  const cut = new Promise<number>((r) => (cutAt = r));
  const relay = createServer((down) => {
    down.on('error', () => undefined);
    const up = new Socket();
    up.on('error', () => undefined);
    up.connect(port, '127.0.0.1', () => down.pipe(up, { end: false }));
    up.once('data', (answer: Buffer) => {
      down.unpipe(up);
      // the listener has read a ClientHello and answered it: the handshake is under way
      cutAt(answer.length);
      if (how === 'reset') up.resetAndDestroy();
      else up.end();
      down.destroy();
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return { port: (relay.address() as AddressInfo).port, cut, close: () => relay.close() };
}

for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
  for (const how of ['reset', 'close'] as const) {
    test(`a client that ${how === 'reset' ? 'resets' : 'closes'} mid-handshake (${maxVersion}, right key) is reported as a reset, not ERR_PSK_MISMATCH`, async () => {
      const l = await echoListener(Parameters.tls({ psk: { key: PSK }, maxVersion }, { framer: true }));
      const rejected = new Promise<string>((r) => l.once('rejected', (e) => r(e.code)));
      const relay = await cuttingRelay(l.port, how);
      const client = tls.connect({
        port: relay.port,
        host: '127.0.0.1',
        maxVersion,
        ciphers: PSK_CIPHERS,
        pskCallback: () => ({ psk: Buffer.from(PSK, 'hex'), identity: 'peerlink' }),
        checkServerIdentity: () => undefined,
      });
      client.on('error', () => undefined);
      try {
        assert.ok((await relay.cut) > 0, 'the listener answered the ClientHello');
        const code = await rejected;
        assert.notEqual(code, 'ERR_PSK_MISMATCH');
        assert.equal(code, 'ERR_CONNECTION_RESET');
      } finally {
        client.destroy();
        relay.close();
        await l.cancel();
      }
    });
  }
}

/** Relays a dial to `port`, passes back only the listener's first TLS record, then closes. */
async function firstRecordRelay(port: number): Promise<{ port: number; close: () => void }> {
  const relay = createServer((down) => {
    down.on('error', () => undefined);
    const up = new Socket();
    up.on('error', () => undefined);
    up.connect(port, '127.0.0.1', () => down.pipe(up, { end: false }));
    let got = Buffer.alloc(0);
    up.on('data', (b: Buffer) => {
      got = Buffer.concat([got, b]);
      if (got.length < 5) return;
      const record = 5 + got.readUInt16BE(3);
      if (got.length < record) return;
      up.removeAllListeners('data');
      down.unpipe(up);
      up.destroy();
      down.end(got.subarray(0, record));
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return { port: (relay.address() as AddressInfo).port, close: () => relay.close() };
}

for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`a dial whose listener closes after its first handshake record (${maxVersion}, right key) waits with ERR_CONNECTION_RESET, not ERR_PSK_MISMATCH`, async () => {
    const l = await echoListener(Parameters.tls({ psk: { key: PSK }, maxVersion }, { framer: true }));
    const relay = await firstRecordRelay(l.port);
    const c = new Connection(Endpoint.hostPort('127.0.0.1', relay.port), Parameters.tls({ psk: { key: PSK }, maxVersion }, { framer: true, retry: { initialDelay: 60_000, maxDelay: 60_000 } })).start();
    try {
      assert.equal(await nextState(c, 'failed', 'waiting', 'ready'), 'waiting', c.error?.message);
      assert.equal(c.error?.code, 'ERR_CONNECTION_RESET', c.error?.message);
    } finally {
      c.forceCancel();
      relay.close();
      await l.cancel();
    }
  });
}
