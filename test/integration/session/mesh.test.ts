/**
 * A mesh of 16 peers on one host (a loopback-only namespace: discovery over `lo`, several
 * responders sharing port 5353): every peer ends with exactly N−1 connected peers and no
 * duplicate connections, over repeated runs with a simultaneous start; messages to all
 * peers arrive once each, in order; a peer restarted mid-run (same persisted id, new run)
 * comes back exactly once.
 *
 * Layout: process 0 holds the one session that is restarted; processes 1–3 hold five
 * sessions each (1 and 3 share one dnssd engine per process, 2 gives each session its own).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires } from '../../harness/prereq.js';
import { createLab, type Lab } from '../../harness/netns.js';
import type { TrackedProcess } from '../../harness/proc.js';
import { startPeers, waitEv, events, eventually, fullMesh, type Ev } from './peers.js';
import type { FixtureConfig } from './session-peers.js';

let lab: Lab | undefined;
let idDir: string | undefined;
after(async () => {
  await lab?.teardown();
  if (idDir) await rm(idDir, { recursive: true, force: true });
});

const N = 16;
const names = Array.from({ length: N }, (_, i) => `p${String(i).padStart(2, '0')}`);
const groups: string[][] = [names.slice(0, 1), names.slice(1, 6), names.slice(6, 11), names.slice(11, 16)];

async function startMesh(l: Lab, ns: string, base: Omit<FixtureConfig, 'names'>): Promise<{ procs: TrackedProcess[]; ids: Map<string, string> }> {
  // All at once: the simultaneous start is the point.
  const procs = groups.map((g, i) => startPeers(l, ns, { ...base, names: g, sharedMdns: i !== 2 }, `mesh${i}`));
  const ids = new Map<string, string>();
  await Promise.all(
    procs.map(async (p, i) => {
      for (const name of groups[i] as string[]) {
        const r = await waitEv(p, (e) => e.ev === 'ready' && e.name === name, 60_000, `${name} ready`);
        ids.set(name, r.id as string);
      }
    }),
  );
  return { procs, ids };
}

async function closeAll(procs: TrackedProcess[]): Promise<void> {
  for (const p of procs) p.writeLine(JSON.stringify({ cmd: 'close' }));
  await Promise.all(procs.map((p) => waitEv(p, (e) => e.ev === 'closed', 20_000, 'closed').catch(() => p.stop())));
}

test('mesh of 16: N−1 peers each, no duplicates, messages once and in order, restarted peer comes back once; repeated', { timeout: 600_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await createLab({ hosts: 0, tag: 'smesh' });
  idDir = await mkdtemp(join(tmpdir(), 'plmesh-'));
  const fixtures = (procs: TrackedProcess[]): Array<{ p: TrackedProcess; n: number }> => procs.map((p, i) => ({ p, n: (groups[i] as string[]).length }));

  for (let run = 1; run <= 3; run++) {
    // A fresh loopback namespace per run: no mDNS cache or sockets carried over.
    const ns = await lab.addLoopbackNamespace(`lo${run}`);
    const base = { service: `plmesh${run}`, interfaces: ['lo'], idDir, includePeerIdInTxt: run === 2 };
    const t0 = Date.now();
    const { procs, ids } = await startMesh(lab, ns, base);
    const all = [...ids.values()];
    await eventually(fixtures(procs), fullMesh(all), 120_000);
    t.diagnostic(`run ${run}: full mesh of ${N} in ${Date.now() - t0} ms`);
    // Nobody saw a peer connect twice while the mesh formed (no flapping duplicates).
    for (const p of procs) {
      const connected = events(p).filter((e) => e.ev === 'peer' && e.state === 'connected');
      const perPair = new Map<string, number>();
      for (const e of connected) perPair.set(`${String(e.name)}>${String(e.peer)}`, (perPair.get(`${String(e.name)}>${String(e.peer)}`) ?? 0) + 1);
      for (const [pair, n] of perPair) assert.equal(n, 1, `${pair} connected ${n} times`);
    }

    if (run === 1) {
      // Every session sends 100 messages to all 15 others.
      for (const p of procs) p.writeLine(JSON.stringify({ cmd: 'send', count: 100, size: 100 }));
      await Promise.all(procs.map((p, i) => Promise.all((groups[i] as string[]).map((name) => waitEv(p, (e) => e.ev === 'sent' && e.name === name, 60_000, `${name} sent`)))));
      const deadline = Date.now() + 60_000;
      for (;;) {
        const problems: string[] = [];
        for (const p of procs) {
          const since = p.stdoutLines.length;
          p.writeLine(JSON.stringify({ cmd: 'recv' }));
          await waitEv(p, (e) => e.ev === 'recv', 10_000, 'recv', since);
          await new Promise((r) => setTimeout(r, 50));
          for (const e of events(p, since).filter((x) => x.ev === 'recv')) {
            const from = e.from as Record<string, { count: number; ordered: boolean }>;
            const myId = ids.get(e.name as string);
            for (const id of all) {
              if (id === myId) continue;
              const r = from[id];
              if (!r || r.count !== 100) problems.push(`${String(e.name)} has ${r?.count ?? 0} from ${id}`);
              if (r && !r.ordered) problems.push(`${String(e.name)} got ${id}'s messages out of order`);
              if (r && r.count > 100) problems.push(`${String(e.name)} got duplicates from ${id}`);
            }
          }
        }
        if (problems.length === 0) break;
        if (Date.now() > deadline || problems.some((x) => x.includes('order') || x.includes('duplicates'))) assert.fail(problems.slice(0, 10).join('\n'));
        await new Promise((r) => setTimeout(r, 500));
      }

      // Restart p00 mid-run: SIGKILL, then the same peer id in a new process.
      const victim = procs[0] as TrackedProcess;
      const victimId = ids.get('p00') as string;
      const killedAt = Date.now();
      victim.signal('SIGKILL');
      await victim.exited;
      const others = procs.slice(1);
      await eventually(fixtures(others), (st) => (st.some((s) => s.connected.includes(victimId)) ? 'p00 still connected somewhere' : undefined), 20_000);
      t.diagnostic(`p00 notConnected everywhere ${Date.now() - killedAt} ms after SIGKILL`);
      const marks = others.map((p) => p.stdoutLines.length);
      const again = startPeers(lab, ns, { ...base, names: ['p00'], sharedMdns: true }, 'mesh0-again');
      const r = await waitEv(again, (e) => e.ev === 'ready', 60_000, 'p00 ready again');
      assert.equal(r.id, victimId, 'the restarted peer kept its persisted id');
      procs[0] = again;
      await eventually(fixtures(procs), fullMesh(all), 60_000);
      // Each of the 15 others saw p00 connect exactly once after the restart.
      await new Promise((res) => setTimeout(res, 2000));
      others.forEach((p, i) => {
        const evs: Ev[] = events(p, marks[i]).filter((e) => e.ev === 'peer' && e.peer === victimId && e.state === 'connected');
        const perSession = new Map<string, number>();
        for (const e of evs) perSession.set(e.name as string, (perSession.get(e.name as string) ?? 0) + 1);
        for (const name of groups[i + 1] as string[]) assert.equal(perSession.get(name), 1, `${name} saw p00 come back ${perSession.get(name) ?? 0} times`);
      });
    }
    await closeAll(procs);
  }
});
