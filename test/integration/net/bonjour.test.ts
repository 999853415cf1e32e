// Bonjour on the loopback interface only (never a real interface outside a namespace).
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Browser, Connection, Endpoint, Listener, Parameters, type BrowseResult } from '../../../src/net/index.js';
import { killAll, peerlink } from './cli-proc.js';

afterEach(() => killAll());
/** A stuck child process fails its test instead of hanging the file. */
const LIMIT = { timeout: 120_000 };

test('Listener service on lo → Browser result → Connection (hinted and freshly resolved)', LIMIT, async () => {
  const type = `_pl${randomBytes(3).toString('hex')}._tcp`;
  const p = Parameters.tcp({ framer: true });
  const l = new Listener(p, { host: '127.0.0.1', service: { name: 'Net Test', type, txt: { v: '1', flag: true }, interfaces: ['lo'] } });
  const registered = new Promise<string>((r) => l.on('serviceRegistration', (x) => x.change === 'registered' && r(x.name)));
  l.on('connection', (c) => void (async () => {
    for await (const m of c.messages()) await c.send(m);
  })().catch(() => undefined));
  await l.start();
  assert.equal(await registered, 'Net Test');
  const b = new Browser({ type, interfaces: ['lo'] });
  const found = new Promise<BrowseResult>((r) => b.once('added', r));
  await b.start();
  const res = await found;
  assert.equal(res.endpoint.name, 'Net Test');
  assert.deepEqual(res.txt, { v: '1', flag: true });
  assert.deepEqual(res.interfaces, ['lo']);
  const c = await Connection.connect(res.endpoint, p);
  assert.equal(c.currentPath?.remoteEndpoint.port, l.port);
  await c.send('via bonjour');
  assert.equal(String(await c.receiveMessage()), 'via bonjour');
  c.cancel();
  const c2 = await Connection.connect(Endpoint.service('Net Test', type, 'local.', 'lo'), p);
  c2.cancel();
  const removed = new Promise<BrowseResult>((r) => b.once('removed', r));
  await l.cancel();
  assert.equal((await removed).endpoint.name, 'Net Test');
  await b.cancel();
});

test('cat -l --advertise and cat --service on lo', LIMIT, async () => {
  const type = `_pl${randomBytes(3).toString('hex')}._tcp`;
  const l = peerlink(['cat', '-l', '--advertise', `Cat: Den:${type}`, '--interface', 'lo', '127.0.0.1', '0']);
  l.child.stdin.end('hello from den');
  await l.waitFor(/registered Cat: Den/);
  const c = peerlink(['cat', '--service', `Cat: Den:${type}`, '--interface', 'lo']);
  c.child.stdin.end('hi den');
  assert.equal(await c.exited, 0, c.stderr());
  assert.equal(await l.exited, 0, l.stderr());
  assert.equal(String(l.stdout()), 'hi den');
  assert.equal(String(c.stdout()), 'hello from den');
});

test('Browser reports changed on a TXT update; a second listener with the same name is renamed', LIMIT, async () => {
  const type = `_pl${randomBytes(3).toString('hex')}._tcp`;
  const p = Parameters.tcp({ framer: true });
  const first = new Listener(p, { host: '127.0.0.1', service: { name: 'Twin', type, txt: { v: '1' }, interfaces: ['lo'] } });
  const firstName = new Promise<string>((r) => first.on('serviceRegistration', (x) => x.change === 'registered' && r(x.name)));
  await first.start();
  assert.equal(await firstName, 'Twin');
  const b = new Browser({ type, interfaces: ['lo'] });
  const added = new Promise<BrowseResult>((r) => b.once('added', r));
  await b.start();
  assert.deepEqual((await added).txt, { v: '1' });
  const changed = new Promise<[BrowseResult, BrowseResult]>((r) => b.once('changed', (now, before) => r([now, before])));
  first.updateServiceTxt({ v: '2' });
  const [now, before] = await changed;
  assert.deepEqual(now.txt, { v: '2' });
  assert.deepEqual(before.txt, { v: '1' });

  const second = new Listener(p, { host: '127.0.0.1', service: { name: 'Twin', type, interfaces: ['lo'] } });
  const secondName = new Promise<string>((r) => second.on('serviceRegistration', (x) => x.change === 'registered' && r(x.name)));
  await second.start();
  const renamed = await secondName;
  assert.notEqual(renamed, 'Twin');
  assert.match(renamed, /^Twin/);
  await second.cancel();
  await first.cancel();
  await b.cancel();
});
