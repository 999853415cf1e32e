// Shared flags of chat/send/receive: key sources, the unencrypted warning, usage errors.
// (No network: these only build options.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectEndpoints, sessionOptionsFromFlags } from '../../src/cli/session-flags.js';
import { UsageError } from '../../src/cli/args.js';
import type { CliIO } from '../../src/cli/io.js';

function io(env: NodeJS.ProcessEnv = {}): CliIO & { err: () => string } {
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (c: Buffer) => (text += c.toString()));
  return { stdin: Readable.from([]), stdout: new PassThrough(), stderr, env, signal: new AbortController().signal, err: () => text };
}

const KEY = '00112233445566778899aabbccddeeff';

test('--insecure: unencrypted, with a warning on stderr', () => {
  const i = io();
  const o = sessionOptionsFromFlags({ service: 'photos', insecure: true }, i, 'send');
  assert.deepEqual(o.security, { mode: 'none' });
  assert.equal(o.serviceType, 'photos');
  assert.match(i.err(), /warning: running unencrypted/);
});

test('no security flags: --pki is the default (a profile under XDG_CONFIG_HOME), without a warning; --trust-new and --identity apply to it', () => {
  const i = io({ XDG_CONFIG_HOME: '/nonexistent/cfg' });
  const o = sessionOptionsFromFlags({ service: 'photos' }, i, 'chat');
  assert.deepEqual(o.security, { mode: 'pki', identityDir: '/nonexistent/cfg/peerlink/identity' });
  assert.equal(i.err(), '');
  const j = io({ XDG_CONFIG_HOME: '/nonexistent/cfg' });
  assert.deepEqual(sessionOptionsFromFlags({ service: 'photos', pki: true, identity: '/tmp/id', 'trust-new': true }, j, 'send').security, { mode: 'pki', identityDir: '/tmp/id', trustNew: true });
});

test('--insecure is the only way to no encryption, and goes alone; --identity / --trust-new need --pki', () => {
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', insecure: true, pki: true }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', insecure: true, psk: KEY }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', pki: true, psk: KEY }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', psk: KEY, 'trust-new': true }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', insecure: true, identity: '/tmp/id' }, io(), 'send'), UsageError);
});

test('--psk, PEERLINK_PSK and --psk-file all give a PSK session, without the warning', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-flags-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'key'), `${KEY}\n`);
  for (const [flags, env] of [
    [{ psk: KEY }, {}],
    [{}, { PEERLINK_PSK: KEY }],
    [{ 'psk-file': join(dir, 'key') }, {}],
    [{ 'psk-file': join(dir, 'key') }, { PEERLINK_PSK: 'ffff' }],
  ] as const) {
    const i = io(env);
    const o = sessionOptionsFromFlags({ service: 'photos', ...flags }, i, 'send');
    assert.deepEqual(o.security, { mode: 'psk', key: KEY });
    assert.equal(i.err(), '');
  }
});

test('usage errors: no service, bad key, both key flags, unknown interface', () => {
  assert.throws(() => sessionOptionsFromFlags({}, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', psk: 'nothex' }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', psk: 'abcd' }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', psk: KEY, 'psk-file': '/k' }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', 'psk-file': '/nonexistent/key' }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', 'psk-identity': 'me' }, io(), 'send'), UsageError);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', interface: ['nosuchif0'] }, io(), 'send'), (e: unknown) => (e as { code?: string }).code === 'ERR_UNKNOWN_INTERFACE');
});

test('a full service type is accepted as its bare name', () => {
  assert.equal(sessionOptionsFromFlags({ service: '_photos._tcp', psk: KEY }, io(), 'send').serviceType, 'photos');
});

test('an empty or blank key is a usage error, never a silent switch to no encryption', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pl-flags-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'empty'), '\n');
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', psk: '' }, io(), 'receive'), /--psk is empty/);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x', 'psk-file': join(dir, 'empty') }, io(), 'receive'), /--psk-file .* is empty/);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x' }, io({ PEERLINK_PSK: ' ' }), 'receive'), /PEERLINK_PSK is empty/);
  assert.throws(() => sessionOptionsFromFlags({ service: 'x' }, io({ PEERLINK_PSK: '' }), 'send'), UsageError);
});

test('--connect HOST:PORT: IPv4, names, [IPv6] with a zone; anything else is a usage error', () => {
  assert.deepEqual(connectEndpoints(['10.0.0.2:4000', 'box.lan:80', '[fd00::2]:7711', '[fe80::1%eth0]:9']), [
    { kind: 'hostPort', host: '10.0.0.2', port: 4000 },
    { kind: 'hostPort', host: 'box.lan', port: 80 },
    { kind: 'hostPort', host: 'fd00::2', port: 7711 },
    { kind: 'hostPort', host: 'fe80::1', port: 9, interface: 'eth0' },
  ]);
  assert.deepEqual(connectEndpoints(undefined), []);
  for (const bad of ['10.0.0.2', 'fd00::2:80', ':80', 'host:0', 'host:70000', 'host:x']) assert.throws(() => connectEndpoints([bad]), UsageError, bad);
});
