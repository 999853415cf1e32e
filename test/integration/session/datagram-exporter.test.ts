/**
 * The datagram keys come from the control connection's TLS session through the RFC 5705
 * exporter (datagram-seal.ts). That only works if both ends of a session's connection export
 * the same bytes — checked here on TLS 1.3 and on TLS 1.2 PSK (PSK-AES128-GCM-SHA256, the suite
 * Apple's guidance configures), with the session's label and a flow token as context; a
 * different token or label gives different keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Connection, Endpoint, Listener, Parameters } from '../../../src/net/index.js';
import { EXPORTER_BYTES, EXPORTER_LABEL, splitKeys } from '../../../src/session/datagram-seal.js';

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`TLS exporter (${version} PSK): both ends derive the same datagram keys`, async () => {
    const params = Parameters.tls({ psk: { key: randomBytes(32) }, minVersion: version, maxVersion: version }, { framer: true });
    const l = new Listener(params, { host: '127.0.0.1' });
    const accepted = new Promise<Connection>((r) => l.once('connection', r));
    await l.start();
    const c = await Connection.connect(Endpoint.hostPort('127.0.0.1', l.port), params);
    const s = await accepted;
    try {
      // Both ends ready: a message each way.
      await c.send('x');
      assert.equal(String(await s.receiveMessage()), 'x');
      assert.equal(c.report().tls?.version, version);
      if (version === 'TLSv1.2') assert.match(c.report().tls?.cipher ?? '', /PSK/);
      const token = randomBytes(16);
      const kc = c.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, token);
      const ks = s.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, token);
      assert.equal(kc.length, EXPORTER_BYTES);
      assert.ok(kc.equals(ks), 'client and server export the same bytes');
      const client = splitKeys(kc, true);
      const server = splitKeys(ks, false);
      assert.ok(client.send.key.equals(server.receive.key) && server.send.key.equals(client.receive.key));
      assert.ok(!kc.equals(c.exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, randomBytes(16))), 'another flow token, other keys');
      assert.ok(!kc.equals(c.exportKeyingMaterial(EXPORTER_BYTES, 'EXPERIMENTAL-other', token)), 'another label, other keys');
    } finally {
      c.forceCancel();
      s.forceCancel();
      await l.cancel();
    }
  });
}
