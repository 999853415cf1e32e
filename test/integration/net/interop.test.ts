// Third-party peers on loopback: openssl s_client / s_server (PKI and PSK) and Debian's
// python3-websockets client against our listeners.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires } from '../../harness/prereq.js';
import { Connection, Endpoint, Listener, Parameters, generateIdentity } from '../../../src/net/index.js';
import { freePort, PSK } from './helpers.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string, timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (input !== undefined) child.stdin.write(input);
  });
}

/** A listener that answers the first bytes with `got:<bytes>` and closes. */
async function replyListener(p: Parameters): Promise<Listener> {
  const l = new Listener(p, { host: '127.0.0.1' });
  l.on('connection', (c) => {
    void (async () => {
      const b = await c.receive(1, 1000);
      await c.send(Buffer.concat([Buffer.from('got:'), b ?? Buffer.alloc(0)]), { final: true });
    })().catch(() => c.forceCancel());
  });
  await l.start();
  return l;
}

/** Starts `openssl s_server ... -rev` and resolves once it accepts. */
async function sServer(args: string[]): Promise<{ port: number; done: Promise<Run> }> {
  const port = await freePort();
  const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-naccept', '1', '-rev', ...args], { stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  const accepting = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (stdout.includes('ACCEPT')) resolve();
    });
    child.on('exit', () => reject(new Error(`s_server exited: ${stderr}`)));
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const done = new Promise<Run>((resolve) => child.on('exit', (code) => (clearTimeout(timer), resolve({ code: code ?? -1, stdout, stderr }))));
  await accepting;
  return { port, done };
}

test('openssl s_client → our TLS-PSK listener (TLS 1.3 and TLS 1.2 PSK-AES128-GCM-SHA256)', async (t) => {
  if (!requires(t, 'openssl')) return;
  // A listener without an identity accepts OpenSSL's default "Client_identity".
  const l = await replyListener(Parameters.tls({ psk: { key: PSK } }));
  const r13 = await run('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, '-quiet', '-psk', PSK, '-tls1_3'], 'hello13\n');
  assert.equal(r13.stdout, 'got:hello13\n', r13.stderr);
  const r12 = await run('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, '-quiet', '-psk', PSK, '-psk_identity', 'peerlink', '-tls1_2', '-cipher', 'PSK-AES128-GCM-SHA256'], 'hello12\n');
  assert.equal(r12.stdout, 'got:hello12\n', r12.stderr);
  // a wrong key is refused
  const rejected = new Promise<string>((r) => l.once('rejected', (e) => r(e.code)));
  const bad = await run('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, '-quiet', '-psk', 'ff'.repeat(16), '-tls1_3'], 'x\n');
  assert.notEqual(bad.stdout, 'got:x\n');
  assert.equal(await rejected, 'ERR_PSK_MISMATCH');
  await l.cancel();
});

test('openssl s_client → our TLS-PKI listener (verified against the cert, and mutual TLS)', async (t) => {
  if (!requires(t, 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'plossl-'));
  const server = await generateIdentity({ commonName: 'localhost' });
  const client = await generateIdentity({ commonName: 'client' });
  writeFileSync(join(dir, 's.crt'), server.cert);
  writeFileSync(join(dir, 'c.crt'), client.cert);
  writeFileSync(join(dir, 'c.key'), client.key);
  const l = await replyListener(Parameters.tls({ pki: { cert: server.cert, key: server.key } }));
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, '-quiet', '-CAfile', join(dir, 's.crt'), '-verify_return_error', '-verify_hostname', 'localhost'], 'pki\n');
  assert.equal(r.stdout, 'got:pki\n', r.stderr);
  await l.cancel();
  const ml = await replyListener(Parameters.tls({ pki: { cert: server.cert, key: server.key, requireClientCertificate: true, pins: [client.pin] } }));
  const m = await run('openssl', ['s_client', '-connect', `127.0.0.1:${ml.port}`, '-quiet', '-CAfile', join(dir, 's.crt'), '-verify_return_error', '-cert', join(dir, 'c.crt'), '-key', join(dir, 'c.key')], 'mutual\n');
  assert.equal(m.stdout, 'got:mutual\n', m.stderr);
  await ml.cancel();
});

test('our TLS-PSK client → openssl s_server (TLS 1.3 and TLS 1.2)', async (t) => {
  if (!requires(t, 'openssl')) return;
  for (const [max, extra, cipher] of [
    ['TLSv1.3', [], 'TLS_AES_128_GCM_SHA256'],
    ['TLSv1.2', ['-tls1_2', '-cipher', 'PSK-AES128-GCM-SHA256'], 'TLS_PSK_WITH_AES_128_GCM_SHA256'],
  ] as const) {
    const s = await sServer(['-nocert', '-psk', PSK, '-psk_identity', 'peerlink', ...extra]);
    const c = await Connection.connect(Endpoint.hostPort('127.0.0.1', s.port), Parameters.tls({ psk: { key: PSK }, maxVersion: max }));
    await c.send('hello\n');
    assert.equal(String(await c.receive(6, 6)), 'olleh\n');
    assert.equal(c.report().tls?.cipher, cipher);
    c.cancel();
    await s.done;
  }
  // s_server with another key: our client fails with the stable code
  const s = await sServer(['-nocert', '-psk', 'ff'.repeat(16), '-psk_identity', 'peerlink']);
  const c = new Connection(Endpoint.hostPort('127.0.0.1', s.port), Parameters.tls({ psk: { key: PSK } })).start();
  await assert.rejects(c.whenReady(), (e: unknown) => (e as { code?: string }).code === 'ERR_PSK_MISMATCH');
  await s.done;
});

test('our TLS-PKI client → openssl s_server (pinned, CA + host name, mutual TLS)', async (t) => {
  if (!requires(t, 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'plossl-'));
  const server = await generateIdentity({ commonName: 'localhost' });
  const client = await generateIdentity({ commonName: 'client' });
  for (const [n, v] of Object.entries({ 's.crt': server.cert, 's.key': server.key, 'c.crt': client.cert })) writeFileSync(join(dir, n), v);
  const s1 = await sServer(['-cert', join(dir, 's.crt'), '-key', join(dir, 's.key')]);
  const c1 = await Connection.connect(Endpoint.hostPort('127.0.0.1', s1.port), Parameters.tls({ pki: { pins: [server.pin] } }));
  await c1.send('pin\n');
  assert.equal(String(await c1.receive(4, 4)), 'nip\n');
  c1.cancel();
  await s1.done;
  const s2 = await sServer(['-cert', join(dir, 's.crt'), '-key', join(dir, 's.key')]);
  const c2 = await Connection.connect(Endpoint.hostPort('localhost', s2.port), Parameters.tls({ pki: { ca: server.cert } }));
  c2.cancel();
  await s2.done;
  const s3 = await sServer(['-cert', join(dir, 's.crt'), '-key', join(dir, 's.key'), '-Verify', '1', '-CAfile', join(dir, 'c.crt'), '-verify_return_error']);
  const c3 = await Connection.connect(Endpoint.hostPort('127.0.0.1', s3.port), Parameters.tls({ pki: { pins: [server.pin], cert: client.cert, key: client.key } }));
  await c3.send('mtls\n');
  assert.equal(String(await c3.receive(5, 5)), 'sltm\n');
  c3.cancel();
  await s3.done;
});

test('python3-websockets client → our ws listener', async (t) => {
  if (!requires(t, 'python-websockets')) return;
  const l = new Listener(Parameters.ws(), { host: '127.0.0.1' });
  l.on('connection', (c) => void (async () => {
    for await (const m of c.messages()) await c.send(Buffer.concat([Buffer.from('echo:'), m]));
  })().catch(() => undefined));
  await l.start();
  const script = [
    'import asyncio, sys, websockets',
    'async def main(uri):',
    '    async with websockets.connect(uri) as ws:',
    "        await ws.send(b'binary hello')",
    '        print((await ws.recv()).decode())',
    "        await ws.send('text hello')",
    '        print((await ws.recv()).decode())',
    '        pong = await ws.ping()',
    '        await asyncio.wait_for(pong, 5)',
    "        print('pong ok')",
    'asyncio.run(main(sys.argv[1]))',
  ].join('\n');
  const r = await run('/usr/bin/python3', ['-c', script, `ws://127.0.0.1:${l.port}/anything`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'echo:binary hello\necho:text hello\npong ok\n');
  await l.cancel();
});
