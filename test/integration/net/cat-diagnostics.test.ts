/**
 * `peerlink cat` says what went wrong, on stderr, with a stable code: keys (where they came
 * from, empty ones, PEERLINK_PSK only with --psk-env), plaintext clients of TLS listeners,
 * untrusted certificates, and what --verbose says when a client connects.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, peerlink } from './cli-proc.js';
import { PSK } from './helpers.js';

afterEach(() => killAll());
const LIMIT = { timeout: 120_000 };

test('cat: an empty or blank key (--psk, --psk-file, PEERLINK_PSK with --psk-env) is a usage error (exit 2), never "no key"', LIMIT, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plcat-diag-'));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'blank'), ' \n\t\n');
  const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv }> = [
    { args: ['cat', '-l', '--psk', '', '127.0.0.1', '0'] },
    { args: ['cat', '-l', '--psk=', '127.0.0.1', '0'] },
    { args: ['cat', '-l', '--psk', '  ', '127.0.0.1', '0'] },
    { args: ['cat', '-l', '--psk-file', join(dir, 'empty'), '127.0.0.1', '0'] },
    { args: ['cat', '-l', '--psk-file', join(dir, 'blank'), '127.0.0.1', '0'] },
    { args: ['cat', '-l', '--psk-env', '127.0.0.1', '0'], env: { PEERLINK_PSK: '' } },
    { args: ['cat', '-l', '--psk-env', '127.0.0.1', '0'], env: { PEERLINK_PSK: ' ' } },
    { args: ['cat', '--psk', '', '127.0.0.1', '1'] },
  ];
  for (const { args, env } of cases) {
    const p = peerlink(args, env);
    p.child.stdin.end();
    assert.equal(await p.exited, 2, `${args.join(' ')}: ${p.stderr()}`);
    assert.match(p.stderr(), /is empty.*\(ERR_INVALID_ARGUMENT\)|not set/, args.join(' '));
    assert.doesNotMatch(p.stderr(), /listening on/);
  }
});

test('cat: PEERLINK_PSK alone does not turn cat into TLS (it says so); with --psk-env it does, and cat says where its key came from', LIMIT, async () => {
  // A plain listener and a plain client, with a key exported: plain bytes, no TLS record.
  const l = peerlink(['cat', '-l', '127.0.0.1', '0'], { PEERLINK_PSK: PSK });
  l.child.stdin.end();
  const port = await l.port();
  const c = peerlink(['cat', '127.0.0.1', String(port)], { PEERLINK_PSK: PSK });
  c.child.stdin.end('plain text');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.equal(String(l.stdout()), 'plain text');
  assert.match(c.stderr(), /PEERLINK_PSK is set but not used.*--psk-env/);

  const dir = mkdtempSync(join(tmpdir(), 'plcat-diag-'));
  writeFileSync(join(dir, 'key'), `${PSK}\n`);
  const tl = peerlink(['cat', '-l', '--psk-file', join(dir, 'key'), '127.0.0.1', '0']);
  tl.child.stdin.end();
  const tport = await tl.port();
  assert.match(tl.stderr(), /TLS-PSK with the key from --psk-file /);
  const tc = peerlink(['cat', '--psk-env', '--verbose', '127.0.0.1', String(tport)], { PEERLINK_PSK: PSK });
  tc.child.stdin.end('over tls');
  assert.equal(await tc.exited, 0, tc.stderr());
  assert.equal(await tl.exited, 0, tl.stderr());
  assert.equal(String(tl.stdout()), 'over tls');
  assert.match(tc.stderr(), /TLS-PSK with the key from PEERLINK_PSK \(--psk-env\)/);
  assert.match(tc.stderr(), /tls: TLSv1\.3/);

  const both = peerlink(['cat', '--psk-env', '--psk-file', join(dir, 'key'), '127.0.0.1', '1'], { PEERLINK_PSK: PSK });
  both.child.stdin.end();
  assert.equal(await both.exited, 2, both.stderr());
});

test('cat: a plain client of a TLS-PSK listener fails (exit 1, ERR_TLS_REQUIRED) and the listener says why, then keeps waiting', LIMIT, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'plcat-diag-'));
  writeFileSync(join(dir, 'key'), `${PSK}\n`);
  const l = peerlink(['cat', '-l', '--psk-file', join(dir, 'key'), '127.0.0.1', '0']);
  l.child.stdin.end('reply');
  const port = await l.port();
  const plain = peerlink(['cat', '127.0.0.1', String(port)]);
  plain.child.stdin.end('hello');
  assert.equal(await plain.exited, 1, plain.stderr());
  assert.match(plain.stderr(), /uses TLS.*\(ERR_TLS_REQUIRED\)/);
  assert.doesNotMatch(plain.stderr(), /ssl3_get_record|wrong version number/);
  assert.equal(plain.stdout().length, 0, 'the alert is not data');
  await l.waitFor(/refused 127\.0\.0\.1:\d+: the client does not speak TLS.*\(ERR_TLS_REQUIRED\)/);
  assert.doesNotMatch(l.stderr(), /ssl3_get_record|wrong version number/);

  const ws = peerlink(['cat', '--ws', '127.0.0.1', String(port)]);
  ws.child.stdin.end('hello');
  assert.equal(await ws.exited, 1, ws.stderr());
  assert.match(ws.stderr(), /\((ERR_PROTOCOL|ERR_TLS_REQUIRED)\)/);
  assert.doesNotMatch(ws.stderr(), /ERR_INTERNAL/);

  const good = peerlink(['cat', '--psk-file', join(dir, 'key'), '127.0.0.1', String(port)]);
  good.child.stdin.end('secret');
  assert.equal(await good.exited, 0, good.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.equal(String(l.stdout()), 'secret');
  assert.equal(String(good.stdout()), 'reply');
});

test('cat -l --tls: a client that does not trust the certificate is reported at once ("refused …", ERR_CERT_UNTRUSTED); --verbose does not say "listener cancelled" on a connection', LIMIT, async () => {
  const l = peerlink(['cat', '-l', '--tls', '--verbose', '127.0.0.1', '0']);
  l.child.stdin.end();
  const pin = (await l.waitFor(/pin is (sha256\/\S+)/))[1] as string;
  const port = await l.port();
  const untrusting = peerlink(['cat', '--tls', '127.0.0.1', String(port)]);
  untrusting.child.stdin.end('x');
  assert.equal(await untrusting.exited, 1, untrusting.stderr());
  assert.match(untrusting.stderr(), /ERR_CERT_UNTRUSTED/);
  // Well before the 30 s handshake timeout.
  await Promise.race([l.waitFor(/refused 127\.0\.0\.1:\d+: .*\(ERR_CERT_UNTRUSTED\)/), new Promise((_r, reject) => setTimeout(() => reject(new Error(`no refusal reported: ${l.stderr()}`)), 10_000))]);
  const c = peerlink(['cat', '--pin', pin, '127.0.0.1', String(port)]);
  c.child.stdin.end('trusted');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.equal(String(l.stdout()), 'trusted');
  assert.match(l.stderr(), /\[C\d+\] from .* ready/);
  assert.doesNotMatch(l.stderr(), /listener cancelled/);
});
