// Wide-area flags (--domain, --dns-server, --tsig-file, --lease, --publish-address, PEERLINK_TSIG):
// how they become options, and their usage errors. No network: these only build options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionOptionsFromFlags } from '../../src/cli/session-flags.js';
import { wideAreaFromFlags } from '../../src/cli/wide-area-flags.js';
import { UsageError } from '../../src/cli/args.js';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/io.js';
import { isPeerlinkError } from '../../src/errors.js';

function io(env: NodeJS.ProcessEnv = {}): CliIO & { err: () => string } {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (c: Buffer) => (text += c.toString()));
  return { stdin: Readable.from([]), stdout: new PassThrough(), stderr, env, signal: new AbortController().signal, err: () => text };
}

const KEY_FILE = 'key "peerlink-key" {\n\talgorithm hmac-sha256;\n\tsecret "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";\n};\n';

test('--domain with a key file, server, lease and addresses become PeerSessionOptions.wideArea; the secret is nowhere in the options JSON', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-wa-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'k.key'), KEY_FILE);
  const o = sessionOptionsFromFlags({ service: 'x', domain: ['example.com', 'lab.example'], 'dns-server': '10.0.0.53:5353', 'tsig-file': join(dir, 'k.key'), lease: '30', 'publish-address': ['100.64.0.7'] }, io(), 'chat');
  assert.deepEqual(o.wideArea?.domains, ['example.com', 'lab.example']);
  assert.equal(o.wideArea?.dnsServer, '10.0.0.53:5353');
  assert.equal(o.wideArea?.lease, 30);
  assert.deepEqual(o.wideArea?.addresses, ['100.64.0.7']);
  assert.equal(o.wideArea?.tsig?.name, 'peerlink-key');
  assert.ok(!JSON.stringify(o).includes('AAECAwQF'));
  const env = wideAreaFromFlags({ domain: ['example.com'] }, { PEERLINK_TSIG: 'hmac-sha256:envkey:AAEC' });
  assert.equal(env?.tsig?.name, 'envkey');
  assert.equal(wideAreaFromFlags({}, {}), undefined);
});

test('usage errors: server/key/lease/address without --domain, bad lease, bad address; a bad key file is ERR_TSIG_BAD_KEY_FILE (exit 2)', async () => {
  for (const v of [{ 'dns-server': '1.2.3.4' }, { 'tsig-file': 'x' }, { lease: '10' }, { 'publish-address': ['1.2.3.4'] }, { domain: ['d'], lease: '1' }, { domain: ['d'], 'publish-address': ['nope'] }])
    assert.throws(() => wideAreaFromFlags(v, {}), UsageError);
  assert.throws(() => wideAreaFromFlags({ domain: ['d'], 'tsig-file': '/nonexistent/key' }, {}), (e: unknown) => isPeerlinkError(e, 'ERR_TSIG_BAD_KEY_FILE'));
  const i = io();
  assert.equal(await main(['advertise', 'X', '_x._tcp', '1', '--domain', 'd', '--tsig-file', '/nonexistent/key'], i), 2);
  assert.match(i.err(), /ERR_TSIG_BAD_KEY_FILE|cannot read the TSIG key file/);
  const j = io();
  assert.equal(await main(['browse', '_x._tcp', '--dns-server', '1.2.3.4'], j), 2);
  assert.match(j.err(), /--dns-server needs --domain/);
});
