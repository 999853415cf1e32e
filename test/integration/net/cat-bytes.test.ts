/**
 * `peerlink cat` is byte-exact on every transport and in both directions, with stdin read
 * from a file (fast) or trickled through a pipe (slow), and the receiving side's stdin empty
 * (`< /dev/null`, as in a script) — or it exits non-zero: never a silent short copy.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, peerlink, type Proc } from './cli-proc.js';
import { PSK } from './helpers.js';

afterEach(() => killAll());
const LIMIT = { timeout: 120_000 };

let dir = '';
const files: Record<string, { path: string; sha: string; size: number }> = {};
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'plcat-bytes-'));
  writeFileSync(join(dir, 'key'), `${PSK}\n`);
  for (const [name, size] of [
    ['1MiB', 1024 * 1024],
    ['50MB', 50_000_000],
  ] as const) {
    const data = randomBytes(size);
    const path = join(dir, name);
    writeFileSync(path, data);
    files[name] = { path, sha: sha256(data), size };
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Transport {
  name: string;
  listen: () => string[];
  client: (pin: string | undefined) => string[];
  /** The listener prints an ephemeral certificate's pin for the client to trust. */
  pin?: boolean;
}

const TRANSPORTS: Transport[] = [
  { name: 'tcp', listen: () => [], client: () => [] },
  { name: 'tls-psk', listen: () => ['--psk-file', join(dir, 'key')], client: () => ['--psk-file', join(dir, 'key')] },
  { name: 'tls-pki', listen: () => ['--tls'], client: (pin) => ['--pin', pin as string], pin: true },
  { name: 'ws', listen: () => ['--ws'], client: () => ['--ws'] },
  { name: 'wss-psk', listen: () => ['--ws', '--psk-file', join(dir, 'key')], client: () => ['--ws', '--psk-file', join(dir, 'key')] },
  { name: 'wss-pki', listen: () => ['--ws', '--tls'], client: (pin) => ['--ws', '--pin', pin as string], pin: true },
];

type Input = { file: string } | { slow: Buffer };

/** Starts a listener and a client; `input` goes to `from`'s stdin, the other side's stdin is /dev/null. */
async function copy(t: Transport, from: 'client' | 'listener', input: Input): Promise<{ l: Proc; c: Proc; sender: Proc; receiver: Proc }> {
  const stdinOf = (side: 'client' | 'listener'): { stdinFile?: string } => (side !== from ? { stdinFile: '/dev/null' } : 'file' in input ? { stdinFile: input.file } : {});
  const l = peerlink(['cat', '-l', ...t.listen(), '127.0.0.1', '0'], {}, stdinOf('listener'));
  const pin = t.pin ? (await l.waitFor(/pin is (sha256\/\S+)/))[1] : undefined;
  const port = await l.port();
  const c = peerlink(['cat', ...t.client(pin), '127.0.0.1', String(port)], {}, stdinOf('client'));
  const sender = from === 'client' ? c : l;
  if ('slow' in input) void trickle(sender, input.slow);
  return { l, c, sender, receiver: from === 'client' ? l : c };
}

/** Feeds stdin in small pieces with pauses, as a slow producer (a person, a slow pipe) would. */
async function trickle(p: Proc, data: Buffer): Promise<void> {
  const piece = 4096;
  for (let off = 0; off < data.length; off += piece) {
    if (p.child.exitCode !== null) return;
    p.child.stdin.write(data.subarray(off, off + piece));
    await new Promise((r) => setTimeout(r, 25));
  }
  p.child.stdin.end();
}

for (const t of TRANSPORTS) {
  for (const from of ['client', 'listener'] as const) {
    const to = from === 'client' ? 'listener' : 'client';
    for (const size of ['1MiB', '50MB']) {
      test(`cat ${t.name}: ${size} ${from} → ${to} byte-exact (receiver's stdin empty), both exit 0`, LIMIT, async () => {
        const f = files[size] as { path: string; sha: string; size: number };
        const { l, c, sender, receiver } = await copy(t, from, { file: f.path });
        const [lc, cc] = await Promise.all([l.exited, c.exited]);
        assert.equal(cc, 0, `client: ${c.stderr()}`);
        assert.equal(lc, 0, `listener: ${l.stderr()}`);
        const got = receiver.stdout();
        assert.equal(got.length, f.size, `the ${to} got ${got.length} of ${f.size} bytes`);
        assert.equal(sha256(got), f.sha);
        assert.equal(sender.stdout().length, 0);
      });
    }
  }
}

for (const t of TRANSPORTS.filter((x) => ['tcp', 'tls-psk', 'ws', 'wss-psk'].includes(x.name))) {
  for (const from of ['client', 'listener'] as const) {
    test(`cat ${t.name}: slow stdin (pieces with pauses) ${from} → other side byte-exact`, LIMIT, async () => {
      const data = randomBytes(64 * 1024);
      const { l, c, receiver } = await copy(t, from, { slow: data });
      const [lc, cc] = await Promise.all([l.exited, c.exited]);
      assert.equal(cc, 0, `client: ${c.stderr()}`);
      assert.equal(lc, 0, `listener: ${l.stderr()}`);
      assert.equal(sha256(receiver.stdout()), sha256(data), `got ${receiver.stdout().length} of ${data.length} bytes`);
    });
  }
}

test('cat --ws: when both sides send and the listener ends first, the client never exits 0 with its data cut short', LIMIT, async () => {
  const f = files['50MB'] as { path: string; sha: string; size: number };
  const l = peerlink(['cat', '-l', '--ws', '127.0.0.1', '0']);
  const port = await l.port();
  // The listener has something to say and ends at once: WebSocket has no half-close, so its
  // closing handshake ends the client's sending too.
  l.child.stdin.end('short reply');
  const c = peerlink(['cat', '--ws', '127.0.0.1', String(port)], {}, { stdinFile: f.path });
  const [lc, cc] = await Promise.all([l.exited, c.exited]);
  assert.equal(lc, 0, l.stderr());
  assert.equal(String(c.stdout()), 'short reply');
  if (l.stdout().length === f.size) assert.equal(cc, 0, c.stderr());
  else {
    assert.equal(cc, 1, `the listener got ${l.stdout().length} of ${f.size} bytes and the client exited ${cc}: ${c.stderr()}`);
    assert.match(c.stderr(), /before all of stdin was sent .*\(ERR_CLOSED\)/);
  }
});
