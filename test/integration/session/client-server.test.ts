/**
 * Client-server architecture: one server advertises, clients browse and dial it. The server
 * ends with one connection per client, each client with exactly the server (clients never
 * connect to each other); a stream opened by the server reaches a client that has no
 * listener (the client dials back); a client restarted with the same id replaces its old
 * connection (newest wins) and comes back once.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires } from '../../harness/prereq.js';
import { createLab, type Lab } from '../../harness/netns.js';
import { startPeers, waitEv, events, eventually, type Status } from './peers.js';

let lab: Lab | undefined;
let idDir: string | undefined;
after(async () => {
  await lab?.teardown();
  if (idDir) await rm(idDir, { recursive: true, force: true });
});

test('client-server: one connection per client, clients only see the server, dial-back streams, newest wins', { timeout: 300_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await createLab({ hosts: 0, tag: 'scs' });
  const ns = await lab.addLoopbackNamespace('lo');
  idDir = await mkdtemp(join(tmpdir(), 'plcs-'));
  const base = { service: 'plcs', interfaces: ['lo'], architecture: 'client-server' as const, idDir };
  const server = startPeers(lab, ns, { ...base, names: ['server'], role: 'server' });
  const c1 = startPeers(lab, ns, { ...base, names: ['c1', 'c2'], role: 'client', sharedMdns: true });
  let c2 = startPeers(lab, ns, { ...base, names: ['c3'], role: 'client' });
  const serverId = (await waitEv(server, (e) => e.ev === 'ready', 30_000, 'server ready')).id as string;
  const clientIds: string[] = [];
  for (const [p, names] of [[c1, ['c1', 'c2']], [c2, ['c3']]] as const) {
    for (const name of names) clientIds.push((await waitEv(p, (e) => e.ev === 'ready' && e.name === name, 30_000, `${name} ready`)).id as string);
  }
  const settled = (all: Status[]): string | undefined => {
    for (const s of all) {
      const want = s.id === serverId ? [...clientIds].sort() : [serverId];
      if ([...s.connected].sort().join() !== want.join()) return `${s.name} has ${s.connected.length} peers`;
      if (s.stats.controlConnections !== want.length) return `${s.name} has ${s.stats.controlConnections} control connections`;
    }
    return undefined;
  };
  await eventually([{ p: server, n: 1 }, { p: c1, n: 2 }, { p: c2, n: 1 }], settled, 60_000);

  // A stream from the server to a client without a listener: the client dials back.
  server.writeLine(JSON.stringify({ cmd: 'stream', from: 'server', to: 'c3', bytes: 5_000_000 }));
  const got = await waitEv(c2, (e) => e.ev === 'stream-recv', 30_000, 'c3 got the stream');
  assert.equal(got.bytes, 5_000_000);
  await waitEv(server, (e) => e.ev === 'stream-done', 30_000, 'server stream done');

  // Restart c3 (same id, new run).
  const mark = server.stdoutLines.length;
  c2.signal('SIGKILL');
  await c2.exited;
  c2 = startPeers(lab, ns, { ...base, names: ['c3'], role: 'client' });
  await waitEv(c2, (e) => e.ev === 'ready', 30_000, 'c3 ready again');
  await eventually([{ p: server, n: 1 }, { p: c1, n: 2 }, { p: c2, n: 1 }], settled, 60_000);
  await new Promise((r) => setTimeout(r, 2000));
  const c3Id = clientIds[2] as string;
  const evs = events(server, mark).filter((e) => e.ev === 'peer' && e.peer === c3Id && e.state === 'connected');
  assert.equal(evs.length, 1, 'c3 came back exactly once');
  for (const p of [server, c1, c2]) p.writeLine(JSON.stringify({ cmd: 'close' }));
  await Promise.all([server, c1, c2].map((p) => waitEv(p, (e) => e.ev === 'closed', 15_000, 'closed')));
});
