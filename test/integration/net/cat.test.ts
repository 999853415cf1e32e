import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '../../../src/net/index.js';
import { killAll, peerlink, until } from './cli-proc.js';

afterEach(() => killAll());
/** A stuck child process fails its test instead of hanging the file. */
const LIMIT = { timeout: 120_000 };
import { PSK } from './helpers.js';

test('cat: tcp both ways byte-exact, half-close, both exit 0', LIMIT, async () => {
  const l = peerlink(['cat', '-l', '127.0.0.1', '0']);
  const port = await l.port();
  const fromListener = randomBytes(200_000);
  l.child.stdin.end(fromListener);
  const c = peerlink(['cat', '127.0.0.1', String(port)]);
  const fromClient = randomBytes(1_500_000);
  c.child.stdin.end(fromClient);
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.ok(l.stdout().equals(fromClient));
  assert.ok(c.stdout().equals(fromListener));
});

test('cat -l waits for a peer with stdin already at EOF, and the client keeps reading after its EOF', LIMIT, async () => {
  const l = peerlink(['cat', '-l', '127.0.0.1', '0']);
  l.child.stdin.end();
  const port = await l.port();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(l.child.exitCode, null);
  const c = peerlink(['cat', '127.0.0.1', String(port)]);
  c.child.stdin.end('ping');
  assert.equal(await c.exited, 0);
  assert.equal(await l.exited, 0);
  assert.equal(String(l.stdout()), 'ping');
});

test('cat: refused client exits 1 at once; --wait retries until the listener appears', LIMIT, async () => {
  // Port 1 (tcpmux) has no listener here: a deterministic refusal, no freed port another process could take.
  const refused = peerlink(['cat', '127.0.0.1', '1']);
  refused.child.stdin.end();
  assert.equal(await refused.exited, 1);
  assert.match(refused.stderr(), /ERR_CONNECTION_REFUSED/);

  // --wait needs a port that is free now and listened on later; if another process takes the
  // freed port in between, the listener cannot bind: try again with a fresh one.
  for (let attempt = 1; ; attempt++) {
    const probe = peerlink(['cat', '-l', '127.0.0.1', '0', '--timeout', '0.1']);
    const port = await probe.port();
    assert.equal(await probe.exited, 0); // a listener still waiting at --timeout exits 0
    const waiting = peerlink(['cat', '--wait', '20', '127.0.0.1', String(port)]);
    waiting.child.stdin.end('late');
    await new Promise((r) => setTimeout(r, 500));
    const l = peerlink(['cat', '-l', '--verbose', '127.0.0.1', String(port)]);
    l.child.stdin.end();
    const lcode = await Promise.race([l.exited, l.waitFor(/listening on|ERR_ADDRESS_IN_USE/).then(() => -1, () => -2)]);
    if (lcode !== -1 || /ERR_ADDRESS_IN_USE/.test(l.stderr())) {
      waiting.child.kill('SIGKILL');
      if (attempt < 3) continue;
      assert.fail(`could not listen on a freed port three times: ${l.stderr()}`);
    }
    assert.equal(await waiting.exited, 0, waiting.stderr());
    assert.equal(await l.exited, 0);
    assert.equal(String(l.stdout()), 'late');
    break;
  }
});

test('cat --psk: wrong key fails the client (1) and the listener keeps waiting for a good one', LIMIT, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plcat-'));
  writeFileSync(join(dir, 'key'), `${PSK}\n`);
  const l = peerlink(['cat', '-l', '--psk-file', join(dir, 'key'), '127.0.0.1', '0']);
  l.child.stdin.end('secret reply');
  const port = await l.port();
  const bad = peerlink(['cat', '--psk-env', '127.0.0.1', String(port)], { PEERLINK_PSK: 'ff'.repeat(16) });
  bad.child.stdin.end('x');
  assert.equal(await bad.exited, 1);
  assert.match(bad.stderr(), /ERR_PSK_MISMATCH/);
  await l.waitFor(/ERR_PSK_MISMATCH/);
  const good = peerlink(['cat', '--psk-env', '--verbose', '127.0.0.1', String(port)], { PEERLINK_PSK: PSK });
  good.child.stdin.end('secret');
  assert.equal(await good.exited, 0, good.stderr());
  assert.equal(await l.exited, 0);
  assert.equal(String(l.stdout()), 'secret');
  assert.equal(String(good.stdout()), 'secret reply');
  assert.match(good.stderr(), /tls: TLSv1\.3 .* psk identity "peerlink"/);
});

test('cat --tls: ephemeral listener identity, client pins it; a wrong pin fails', LIMIT, async () => {
  const l = peerlink(['cat', '-l', '--tls', '127.0.0.1', '0']);
  l.child.stdin.end('tls reply');
  const pin = (await l.waitFor(/pin is (sha256\/\S+)/))[1] as string;
  const port = await l.port();
  const other = await generateIdentity();
  const bad = peerlink(['cat', '--pin', other.pin, '127.0.0.1', String(port)]);
  bad.child.stdin.end();
  assert.equal(await bad.exited, 1);
  assert.match(bad.stderr(), /ERR_CERT_PIN_MISMATCH/);
  const c = peerlink(['cat', '--pin', pin, '127.0.0.1', String(port)]);
  c.child.stdin.end('tls data');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0);
  assert.equal(String(l.stdout()), 'tls data');
  assert.equal(String(c.stdout()), 'tls reply');
});

test('cat --tls with --cert/--key/--ca (mutual TLS with pins)', LIMIT, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plcat-'));
  const s = await generateIdentity();
  const k = await generateIdentity();
  for (const [n, v] of Object.entries({ 's.crt': s.cert, 's.key': s.key, 'c.crt': k.cert, 'c.key': k.key })) writeFileSync(join(dir, n), v);
  const l = peerlink(['cat', '-l', '--cert', join(dir, 's.crt'), '--key', join(dir, 's.key'), '--pin', k.pin, '127.0.0.1', '0']);
  l.child.stdin.end();
  const port = await l.port();
  const c = peerlink(['cat', '--cert', join(dir, 'c.crt'), '--key', join(dir, 'c.key'), '--ca', join(dir, 's.crt'), '127.0.0.1', String(port)]);
  c.child.stdin.end('mutual');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.equal(String(l.stdout()), 'mutual');
});

test('cat --ws: messages both ways, closing handshake at EOF; --keep-open waits for the peer', LIMIT, async () => {
  const l = peerlink(['cat', '-l', '--ws', '--keep-open', '127.0.0.1', '0']);
  const port = await l.port();
  const c = peerlink(['cat', '--ws', '127.0.0.1', String(port)]);
  l.child.stdin.write('hello from listener');
  // WebSocket has no half-close: end the client's input only once the listener's message is in.
  await until(() => String(c.stdout()) === 'hello from listener', "the listener's message");
  c.child.stdin.end('hello from client');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.equal(String(l.stdout()), 'hello from client');
  assert.equal(String(c.stdout()), 'hello from listener');
});

test('cat -u: datagrams both ways; runs until --timeout (exit 0)', LIMIT, async () => {
  // Generous timeouts: process start-up under load must not eat the test; every step waits on evidence.
  const l = peerlink(['cat', '-l', '-u', '127.0.0.1', '0', '--timeout', '20']);
  const port = await l.port();
  const c = peerlink(['cat', '-u', '127.0.0.1', String(port), '--timeout', '15']);
  c.child.stdin.write('datagram one');
  await until(() => String(l.stdout()) === 'datagram one', 'the first datagram at the listener');
  l.child.stdin.write('datagram back');
  await until(() => String(c.stdout()) === 'datagram back', 'the reply at the client');
  // UDP has no end: SIGTERM (or --timeout) is the normal end, exit 0.
  c.child.kill('SIGTERM');
  l.child.kill('SIGTERM');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
});

test('cat: usage errors exit 2; SIGINT on a connected client exits 130; listener waiting exits 0 on SIGTERM', LIMIT, async () => {
  for (const args of [['cat'], ['cat', '-u', '--ws', 'h', '1'], ['cat', '--psk', '00', 'h', '1'], ['cat', '--interface', 'nosuch0', 'h', '1'], ['cat', '-u', '--tls', 'h', '1']]) {
    const p = peerlink(args);
    p.child.stdin.end();
    assert.equal(await p.exited, 2, `${args.join(' ')}: ${p.stderr()}`);
  }
  const l = peerlink(['cat', '-l', '--verbose', '127.0.0.1', '0']);
  const port = await l.port();
  const c = peerlink(['cat', '--verbose', '127.0.0.1', String(port)]);
  // interrupt only once both ends are connected
  await l.waitFor(/\[C\d+\] from .* ready/);
  await c.waitFor(/ready/);
  c.child.kill('SIGINT');
  assert.equal(await c.exited, 130);
  l.child.stdin.end();
  assert.equal(await l.exited, 0);
  const w = peerlink(['cat', '-l', '127.0.0.1', '0']);
  await w.port();
  w.child.kill('SIGTERM');
  assert.equal(await w.exited, 0);
});
