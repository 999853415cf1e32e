// Consent, budgets and disk rules of incoming resources, both ends over real TCP on
// 127.0.0.1 (ResourceManagers without a session): an offer is accepted only by a listener
// or the accept callback; savedName; transfersPerPeer; transferIdleTimeout; quota and the
// free-space floor; leftovers of a killed receiver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { readdir, statfs, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { socketPair, tempDir as makeTempDir, type Ctx } from '../../harness/loopback.js';
import { randomBytes } from 'node:crypto';
import { isPeerlinkError } from '../../../src/errors.js';
import { ResourceManager, type ResourceManagerOptions } from '../../../src/session/resource-manager.js';
import type { IncomingResource, ResourceOffer } from '../../../src/session/resource-receive.js';
import { ResourceStore, freeSpaceFloorBytes } from '../../../src/session/resource-store.js';
import type { TransferState } from '../../../src/session/resource-progress.js';
import { BudgetLedger, resolveBudgets } from '../../../src/session/budgets.js';
import { encodeFrame, ResourceStreamReader } from '../../../src/session/resource-wire.js';

const tempDir = (t: Ctx, prefix = 'pl-consent-'): Promise<string> => makeTempDir(t, prefix);


type ReceiverOptions = Omit<ResourceManagerOptions<string>, 'open' | 'announce' | 'directory'>;

interface Pair {
  sender: ResourceManager<string>;
  receiver: ResourceManager<string>;
  dir: string;
  src: string;
  announced: Array<IncomingResource<string>>;
  received: Array<IncomingResource<string>>;
}

async function pair(t: Ctx, receiverOptions: ReceiverOptions = {}, senderOptions: { acceptTimeout?: number } = {}): Promise<Pair> {
  const dir = await tempDir(t, 'pl-consent-dl-');
  const src = await tempDir(t, 'pl-consent-src-');
  const announced: Array<IncomingResource<string>> = [];
  const received: Array<IncomingResource<string>> = [];
  const receiver = new ResourceManager<string>({ directory: dir, open: () => assert.fail('receiver never opens'), announce: (r) => announced.push(r), ...receiverOptions });
  const sender = new ResourceManager<string>({
    open: async () => {
      const [a, b] = await socketPair(t);
      received.push(receiver.receive(b, 'sender-peer'));
      return a;
    },
    announce: () => assert.fail('sender never receives'),
    ...senderOptions,
  });
  t.after(async () => {
    await sender.close();
    await receiver.close();
  });
  return { sender, receiver, dir, src, announced, received };
}

async function file(p: Pair, name: string, bytes: number): Promise<string> {
  const path = join(p.src, name);
  await writeFile(path, randomBytes(bytes));
  return path;
}

const code = (c: string) => (e: unknown) => isPeerlinkError(e, c as never);

test('no resource listener and no accept callback: refused with ERR_RESOURCE_REFUSED, no byte written', async (t) => {
  const p = await pair(t);
  const transfer = p.sender.send(await file(p, 'a.bin', 100_000), 'a.bin', 'r');
  await assert.rejects(transfer.done, code('ERR_RESOURCE_REFUSED'));
  await assert.rejects(p.received[0]!.done, code('ERR_RESOURCE_REFUSED'));
  assert.equal(transfer.progress.bytes, 0, 'the sender sent no byte of the body');
  assert.equal(p.received[0]!.progress.bytes, 0);
  assert.deepEqual(await readdir(p.dir), []);
  assert.equal(p.announced.length, 0);
});

test('a listener accepts (as before): the file arrives and savedName is reported', async (t) => {
  const p = await pair(t, { listening: () => true });
  const path = await file(p, 'same.txt', 10);
  const first = await p.sender.send(path, 'same.txt', 'r').done;
  assert.equal(first.savedName, 'same.txt');
  const second = await p.sender.send(path, 'same.txt', 'r').done;
  assert.equal(second.name, 'same.txt');
  assert.equal(second.savedName, 'same (1).txt');
  assert.deepEqual((await readdir(p.dir)).sort(), ['same (1).txt', 'same.txt']);
});

test('accept callback true: the offer describes the file, the sender waits in awaitingAcceptance', async (t) => {
  const offers: Array<ResourceOffer<string>> = [];
  const p = await pair(t, { accept: (o) => (offers.push(o), true) });
  const transfer = p.sender.send(await file(p, 'ok.bin', 1234), 'ok.bin', 'r');
  const states: TransferState[] = [];
  transfer.on('state', (s) => states.push(s));
  const r = await transfer.done;
  assert.equal(r.savedName, 'ok.bin');
  assert.deepEqual(states, ['awaitingAcceptance', 'transferring', 'verifying', 'completed']);
  assert.equal(offers.length, 1);
  assert.equal(offers[0]!.peer, 'sender-peer');
  assert.deepEqual(offers[0]!.files, [{ name: 'ok.bin', size: 1234 }]);
  assert.equal(offers[0]!.totalBytes, 1234);
  assert.deepEqual(await readdir(p.dir), ['ok.bin']);
  assert.equal(p.announced.length, 0, 'no listener: not announced');
});

test('accept callback false: ERR_RESOURCE_REFUSED on both sides, nothing written', async (t) => {
  const p = await pair(t, { accept: () => false, listening: () => true });
  const transfer = p.sender.send(await file(p, 'no.bin', 50_000), 'no.bin', 'r');
  await assert.rejects(transfer.done, code('ERR_RESOURCE_REFUSED'));
  await assert.rejects(p.received[0]!.done, code('ERR_RESOURCE_REFUSED'));
  assert.equal(transfer.progress.bytes, 0);
  assert.deepEqual(await readdir(p.dir), []);
  assert.equal(p.announced.length, 0, 'a refused offer is not announced');
});

test('a slow accept (a person deciding): nothing is sent or written until it says yes', async (t) => {
  let decide!: (yes: boolean) => void;
  let decideReady!: () => void;
  const asked = new Promise<void>((resolveAsked) => (decideReady = resolveAsked));
  const p = await pair(t, {
    accept: () =>
      new Promise<boolean>((res) => {
        decide = res;
        decideReady();
      }),
    listening: () => true,
  });
  const transfer = p.sender.send(await file(p, 'slow.bin', 300_000), 'slow.bin', 'r');
  await asked;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(transfer.state, 'awaitingAcceptance');
  assert.equal(p.received[0]!.state, 'awaitingAcceptance');
  assert.equal(transfer.progress.bytes, 0);
  assert.deepEqual(await readdir(p.dir), [], 'no temp file while the offer is pending');
  decide(true);
  const r = await transfer.done;
  assert.equal(r.size, 300_000);
  assert.equal(p.announced.length, 1, 'accepted, then announced to the listener');
  assert.deepEqual(await readdir(p.dir), ['slow.bin']);
});

test('acceptTimeout: the sender gives up with ERR_TIMEOUT; the receiver sees the offer withdrawn', async (t) => {
  let offer: ResourceOffer<string> | undefined;
  const p = await pair(t, { accept: (o) => ((offer = o), new Promise<boolean>(() => undefined)) }, { acceptTimeout: 300 });
  const transfer = p.sender.send(await file(p, 'late.bin', 1000), 'late.bin', 'r');
  await assert.rejects(transfer.done, code('ERR_TIMEOUT'));
  await assert.rejects(p.received[0]!.done, (e: unknown) => isPeerlinkError(e));
  assert.equal(offer?.signal?.aborted, true, 'offer.signal tells the prompt to go away');
  assert.deepEqual(await readdir(p.dir), []);
});

test('acceptTimeout on the receiver: an undecided offer is refused with ERR_TIMEOUT', async (t) => {
  const p = await pair(t, { accept: () => new Promise<boolean>(() => undefined), acceptTimeout: 200 });
  const transfer = p.sender.send(await file(p, 'late.bin', 1000), 'late.bin', 'r');
  await assert.rejects(transfer.done, code('ERR_TIMEOUT'));
  assert.deepEqual(await readdir(p.dir), []);
});

test('transfersPerPeer: offers beyond the budget are refused with ERR_RESOURCE_BUSY and counted', async (t) => {
  const ledger = new BudgetLedger(resolveBudgets({ transfersPerPeer: 2 }), {});
  const pending: Array<(yes: boolean) => void> = [];
  const p = await pair(t, { budgets: ledger, accept: () => new Promise<boolean>((res) => pending.push(res)) });
  const path = await file(p, 'f.bin', 1000);
  const transfers = [0, 1, 2, 3].map((i) => p.sender.send(path, `f${i}.bin`, 'r'));
  // Which two streams arrive first is up to the transport: any two are accepted, the others busy.
  const busy: unknown[] = [];
  for (const x of transfers) x.done.catch((err: unknown) => busy.push(err));
  while (pending.length < 2 || busy.length < 2) await new Promise((r) => setTimeout(r, 10));
  for (const b of busy) assert.ok(isPeerlinkError(b, 'ERR_RESOURCE_BUSY'), String(b));
  assert.equal(ledger.counts.transfersPerPeer, 2);
  for (const yes of pending) yes(true);
  const settled = await Promise.allSettled(transfers.map((x) => x.done));
  assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 2);
  // Slots are free again.
  const again = p.sender.send(path, 'again.bin', 'r');
  while (pending.length < 3) await new Promise((r) => setTimeout(r, 10));
  pending[2]!(true);
  assert.equal((await again.done).savedName, 'again.bin');
});

/** Offers a resource by hand (a peer that does not follow through). */
async function rawOffer(p: Pair, t: Ctx, name: string, size: number): Promise<{ socket: Socket; reader: ResourceStreamReader; incoming: IncomingResource<string> }> {
  const [a, b] = await socketPair(t);
  const incoming = p.receiver.receive(b, 'stalled-peer');
  a.write(encodeFrame({ type: 'resource', v: 1, name, size, sha256: null }));
  return { socket: a, reader: new ResourceStreamReader(a), incoming };
}

test('transferIdleTimeout: a silent sender fails, its reservation goes (its partial file stays for resuming, counted by its bytes on disk), and a transfer that needs the space succeeds', async (t) => {
  const ledger = new BudgetLedger(resolveBudgets({ transferIdleTimeout: 300 }), {});
  const p = await pair(t, { budgets: ledger, listening: () => true, quota: 1_000_000 });
  const { socket, reader, incoming } = await rawOffer(p, t, 'stalled.bin', 1_000_000);
  assert.equal((await reader.frame()).type, 'accept');
  socket.write(Buffer.alloc(1000));
  // While it holds the whole quota, nothing else fits.
  await assert.rejects(p.sender.send(await file(p, 'x.bin', 10), 'x.bin', 'r').done, code('ERR_RESOURCE_QUOTA'));
  await assert.rejects(incoming.done, code('ERR_TIMEOUT'));
  const answer = await reader.frame();
  assert.equal(answer.type, 'error');
  assert.equal((answer as { code: string }).code, 'ERR_TIMEOUT', 'the stalled sender is told why');
  assert.ok((await p.receiver.store.usage()) <= 1000, 'reservation released: only the bytes on disk count');
  assert.deepEqual((await p.receiver.store.listPartial()).map((x) => x.name), ['stalled.bin'], 'partial file kept for resuming');
  const ok = await p.sender.send(await file(p, 'legit.bin', 900_000), 'legit.bin', 'r').done;
  assert.equal(ok.size, 900_000);
});

test('transferIdleTimeout does not fire while bytes keep coming (at least transferMinBytes per window)', async (t) => {
  const ledger = new BudgetLedger(resolveBudgets({ transferIdleTimeout: 400, transferMinBytes: 2 }), {});
  const p = await pair(t, { budgets: ledger, listening: () => true });
  const { socket, reader, incoming } = await rawOffer(p, t, 'trickle.bin', 10);
  assert.equal((await reader.frame()).type, 'accept');
  for (let i = 0; i < 10; i++) {
    socket.write(Buffer.from([i]));
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(incoming.state, 'verifying');
  socket.destroy();
  await assert.rejects(incoming.done, code('ERR_RESOURCE_ABORTED'));
});

test('a sender trickling fewer than transferMinBytes per transferIdleTimeout is dropped like a silent one', async (t) => {
  const ledger = new BudgetLedger(resolveBudgets({ transferIdleTimeout: 400, transferMinBytes: 8 }), {});
  const p = await pair(t, { budgets: ledger, listening: () => true });
  const { socket, reader, incoming } = await rawOffer(p, t, 'trickle.bin', 1000);
  assert.equal((await reader.frame()).type, 'accept');
  const trickle = setInterval(() => socket.write(Buffer.from([1])), 100);
  t.after(() => clearInterval(trickle));
  await assert.rejects(incoming.done, code('ERR_TIMEOUT'));
  clearInterval(trickle);
  assert.equal(await p.receiver.store.usage(), 0, 'reservation released');
});

test('a quota refusal does not show the sender the receiver directory', async (t) => {
  const p = await pair(t, { listening: () => true, quota: 10 });
  const transfer = p.sender.send(await file(p, 'big.bin', 100), 'big.bin', 'r');
  const err = await transfer.done.then(
    () => assert.fail('accepted'),
    (e: unknown) => e as Error,
  );
  assert.ok(isPeerlinkError(err, 'ERR_RESOURCE_QUOTA'));
  assert.ok(!err.message.includes(p.dir), err.message);
  assert.ok(!err.message.includes(tmpdir()), err.message);
});

test('free-space floor: the larger of the fraction and the bytes; a reservation that would cross it is refused', async (t) => {
  assert.equal(freeSpaceFloorBytes({ fraction: 0.05, bytes: 1024 ** 3 }, 100 * 1024 ** 3), 5 * 1024 ** 3);
  assert.equal(freeSpaceFloorBytes({ fraction: 0.05, bytes: 1024 ** 3 }, 4 * 1024 ** 3), 1024 ** 3);
  assert.equal(freeSpaceFloorBytes({ fraction: 0, bytes: 0 }, 4 * 1024 ** 3), 0);
  const dir = await tempDir(t);
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  // Leave 2 GiB usable above the floor: a 1 GiB reservation fits once, not twice, and a 4 GiB one never.
  const store = new ResourceStore({ directory: dir, freeSpaceFloor: { fraction: 0, bytes: Math.max(0, free - 2 * 1024 ** 3) } });
  t.after(() => store.close());
  await assert.rejects(store.open('huge.bin', 4 * 1024 ** 3), code('ERR_RESOURCE_QUOTA'));
  const first = await store.open('one.bin', 1024 ** 3);
  await assert.rejects(store.open('two.bin', 1.5 * 1024 ** 3), code('ERR_RESOURCE_QUOTA'), 'reservations in progress count');
  await first.abort();
  const again = await store.open('two.bin', 1.5 * 1024 ** 3);
  await again.abort();
  // The default floor is max(5 %, 1 GiB).
  assert.deepEqual(new ResourceStore().freeSpaceFloor, { fraction: 0.05, bytes: 1024 ** 3 });
  assert.throws(() => new ResourceStore({ freeSpaceFloor: { fraction: 1.5 } }), code('ERR_INVALID_ARGUMENT'));
});

test('leftovers: temp files of dead processes are removed when the directory is prepared; live ones are kept', async (t) => {
  const dir = await tempDir(t);
  const hex = (): string => randomBytes(12).toString('hex');
  const dead = `.peerlink-9999999-${hex()}.part`; // above Linux's pid_max: never a live process
  const mine = `.peerlink-${process.pid}-${hex()}.part`;
  const legacyOld = `.peerlink-${hex()}.part`;
  const legacyFresh = `.peerlink-${hex()}.part`;
  for (const n of [dead, mine, legacyOld, legacyFresh, 'keep.txt', '.peerlink-notours.part']) await writeFile(join(dir, n), 'x');
  await truncate(join(dir, dead), 73_000);
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(join(dir, legacyOld), hourAgo, hourAgo);
  const store = new ResourceStore({ directory: dir });
  await store.directory();
  assert.deepEqual((await readdir(dir)).sort(), [legacyFresh, mine, '.peerlink-notours.part', 'keep.txt'].sort());
  assert.deepEqual(store.removedLeftovers.map((l) => l.name).sort(), [dead, legacyOld].sort());
  assert.equal(store.removedLeftovers.find((l) => l.name === dead)?.size, 73_000);
});
