/**
 * NwfSession (the Network framework profile) against a key holder (security psk) written from
 * raw TLS-PSK sockets and a hand-written WebSocket upgrade: completing TLS does not identify a
 * connection — it has no id yet — so connections that never send their id stay within
 * `unidentifiedPerAddress` / `unidentifiedConnections` (docs/security.md "Network framework
 * profile"), while the first-frame limit is still lifted for them (nwf-loopback.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { NwfSession } from '../../src/session/nwf-session.js';

const KEY = randomBytes(16).toString('hex');

/** TLS-PSK, then the WebSocket upgrade by hand; resolves true once the 101 came, false if the victim closed first. */
function idleKeyHolder(port: number, sockets: TLSSocket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tlsConnect({ host: '127.0.0.1', port, maxVersion: 'TLSv1.2', ciphers: 'PSK-AES128-GCM-SHA256', checkServerIdentity: () => undefined, pskCallback: () => ({ psk: Buffer.from(KEY, 'hex'), identity: 'app' }) });
    sockets.push(sock);
    sock.on('error', () => undefined);
    sock.once('close', () => resolve(false));
    sock.once('secureConnect', () => {
      sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      let head = '';
      sock.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) resolve(/^HTTP\/1\.1 101/.test(head));
      });
    });
  });
}

test('NwfSession psk: key holders that complete TLS and never send their id stay within unidentifiedPerAddress (not lifted out of the budget before the id)', { timeout: 60_000 }, async () => {
  const victim = new NwfSession({ serviceType: 'nwf', displayName: 'V', advertise: false, browse: false, security: { mode: 'psk', key: KEY }, budgets: { unidentifiedPerAddress: 4, unidentifiedTimeout: 30_000 } });
  await victim.start();
  const sockets: TLSSocket[] = [];
  try {
    const held: boolean[] = [];
    // One after another: each finished its TLS handshake before the next is dialled.
    for (let i = 0; i < 20; i++) held.push(await idleKeyHolder(victim.listenPort, sockets));
    await new Promise((r) => setTimeout(r, 300));
    const open = sockets.filter((s) => !s.destroyed && !s.closed).length;
    assert.ok(open <= 4, `the victim holds ${open} id-less key-holder connections from one address (upgraded: ${held.filter(Boolean).length}); unidentifiedPerAddress is 4`);
    assert.ok((victim.stats.budgets.unidentifiedPerAddress ?? 0) > 0, 'refusals counted');
  } finally {
    for (const s of sockets) s.destroy();
    await victim.close();
  }
});
