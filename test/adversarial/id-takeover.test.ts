/**
 * Id takeover (issue 9, finding 2): a connection that claims a connected peer's id — with a
 * fresh nonce, the same nonce, or a WELCOME of its own — never displaces the live peer on the
 * claim alone. The victim checks the live connection with a PING round trip and replaces it only
 * if that check fails (the restart case, which must keep working). No rename from a refused HELLO.
 *
 * Attackers are raw sockets with hand-built frames (harness.ts). The honest peer A is a raw peer
 * too (rawPeer: its FrameReader answers the victim's PINGs, as a live session does).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { cleanup, data, frame, hello, idBytes, rawConnect, rawPeer, smallerId, startVictim, welcome, FrameReader, type Victim } from './harness.js';
import { sleep, until } from '../harness/proc.js';

after(cleanup);

const BYE = 0x03;
const WELCOME = 0x02;
const DATA = 0x06;
const DATA_BATCH = 0x09;
const BYE_DUPLICATE = 1;

function uuidOf(id: Buffer): string {
  const h = id.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A random id larger than the victim's (so the peer decides for the pair). */
function largerId(than: string): Buffer {
  const limit = idBytes(than);
  for (;;) {
    const id = randomBytes(16);
    if (Buffer.compare(id, limit) > 0) return id;
  }
}

/** App message texts in the DATA / DATA_BATCH messages a reader got. */
function texts(r: FrameReader): string[] {
  const out: string[] = [];
  for (const m of r.messages) {
    if (m[0] === DATA) out.push(m.subarray(1).toString('utf8'));
    else if (m[0] === DATA_BATCH) {
      for (let off = 1; off + 4 <= m.length; ) {
        const len = m.readUInt32BE(off);
        out.push(m.subarray(off + 4, off + 4 + len).toString('utf8'));
        off += 4 + len;
      }
    }
  }
  return out;
}

interface Claimant {
  socket: Socket;
  reader: FrameReader;
}

/** Sends a HELLO claiming `peerId` (and a WELCOME right after it when `selfWelcome`). */
async function claim(v: Victim, peerId: Buffer, nonce: Buffer, displayName: string, opts: { selfWelcome?: boolean; role?: 0 | 1 | 2 } = {}): Promise<Claimant> {
  const socket = await rawConnect(v.port);
  const reader = new FrameReader(socket);
  socket.write(frame(hello({ peerId, nonce, displayName, ...(opts.role !== undefined ? { role: opts.role } : {}) })));
  if (opts.selfWelcome) socket.write(frame(welcome(1 + Math.floor(Math.random() * 1e9))));
  return { socket, reader };
}

/** The claimant was refused: BYE, no WELCOME, and the victim closed the socket. */
async function refused(c: Claimant, what: string): Promise<void> {
  await until(() => c.reader.ofType(BYE).length > 0 || c.reader.ofType(WELCOME).length > 0 || c.socket.destroyed || c.socket.readableEnded, 15_000, `${what}: claimant refused`);
  assert.equal(c.reader.ofType(WELCOME).length, 0, `${what}: the claimant got no WELCOME`);
  const bye = c.reader.ofType(BYE)[0];
  assert.ok(bye, `${what}: the claimant got a BYE`);
  assert.equal(bye[1], BYE_DUPLICATE, `${what}: BYE duplicate`);
}

/** A still holds its place: connected under its own name, no state change, and its messages go to it. */
async function keepsPlace(v: Victim, a: { socket: Socket; reader: FrameReader; peerId: Buffer }, attacker: Claimant, name: string, what: string): Promise<void> {
  const id = uuidOf(a.peerId);
  const evs = v.events('peer').filter((e) => e.peer === id);
  const since = evs.findIndex((e) => e.state === 'connected');
  assert.deepEqual(evs.slice(since).map((e) => `${String(e.state)}:${String(e.name)}`), [`connected:${name}`], `${what}: connected once, no disconnect, no rename`);
  const text = `for-${name}-${Math.random().toString(36).slice(2)}`;
  v.proc.writeLine(`send ${id} ${text}`);
  await until(() => texts(a.reader).includes(text), 10_000, `${what}: the victim's message reached A`);
  await sleep(300);
  assert.ok(!texts(attacker.reader).includes(text), `${what}: the attacker did not get A's message`);
  assert.ok(!a.socket.destroyed, `${what}: A's connection is open`);
}

test('id takeover (victim decides): a fresh-nonce claim is refused while A answers; once A is frozen a claimant takes over', async () => {
  const v = await startVictim();
  const a = await rawPeer(v, { displayName: 'alice', nonce: randomBytes(16) });
  await until(() => v.events('peer').some((e) => e.state === 'connected' && e.name === 'alice'), 10_000, 'alice connected');

  const attacker = await claim(v, a.peerId, randomBytes(16), 'mallory');
  await refused(attacker, 'fresh nonce');
  await keepsPlace(v, a, attacker, 'alice', 'fresh nonce');
  assert.ok(!v.events('peer').some((e) => e.name === 'mallory'), 'never renamed to the claimant');

  // Restart case: A's process froze (reads nothing, answers nothing); its old connection looks
  // established. A claimant with a fresh nonce (A's new run) replaces it after the check fails.
  a.reader.answerPings = false;
  a.socket.pause();
  const restarted = await claim(v, a.peerId, randomBytes(16), 'alice2');
  await until(() => restarted.reader.ofType(WELCOME).length > 0, 15_000, 'the new run is WELCOMEd once the old connection failed its check');
  assert.ok(!v.events('peer').some((e) => e.peer === uuidOf(a.peerId) && e.state === 'notConnected'), 'replaced without a state change');
  const text = `after-restart-${Math.random().toString(36).slice(2)}`;
  v.proc.writeLine(`send ${uuidOf(a.peerId)} ${text}`);
  await until(() => texts(restarted.reader).includes(text), 10_000, 'messages go to the new run');
  await v.stop();
});

test('id takeover (A decides): a claim with its own WELCOME is refused while A answers', async () => {
  const v = await startVictim();
  const a = await rawPeer(v, { displayName: 'alice', peerId: largerId(v.id) });
  await until(() => v.events('peer').some((e) => e.state === 'connected' && e.name === 'alice'), 10_000, 'alice connected');
  const attacker = await claim(v, a.peerId, randomBytes(16), 'mallory', { selfWelcome: true });
  await refused(attacker, 'self-WELCOMEd claim');
  await keepsPlace(v, a, attacker, 'alice', 'self-WELCOMEd claim');
  assert.ok(!v.events('peer').some((e) => e.name === 'mallory'), 'never renamed to the claimant');

  // Restart case with A deciding: A froze; its new run WELCOMEs at once and sends a message
  // straight away. The message is held with the claim and delivered once the old connection
  // failed its check.
  a.reader.answerPings = false;
  a.socket.pause();
  const restarted = await claim(v, a.peerId, randomBytes(16), 'alice2', { selfWelcome: true });
  restarted.socket.write(frame(data('first words of the new run')));
  await until(() => v.events('message').some((e) => e.text === 'first words of the new run'), 15_000, 'the held message is delivered after the check failed');
  await until(() => v.events('peer').some((e) => e.peer === uuidOf(a.peerId) && e.state === 'connected' && e.name === 'alice2'), 10_000, 'connected as the new run');
  const text = `after-restart-${Math.random().toString(36).slice(2)}`;
  v.proc.writeLine(`send ${uuidOf(a.peerId)} ${text}`);
  await until(() => texts(restarted.reader).includes(text), 10_000, 'messages go to the new run');
  await v.stop();
});

test('id takeover (client-server): the server does not let a same-nonce or fresh-nonce claim replace a live client', async () => {
  const v = await startVictim({ architecture: 'client-server', role: 'server' });
  const nonce = randomBytes(16);
  const a = await rawPeer(v, { displayName: 'alice', role: 2, nonce, peerId: smallerId(v.id) });
  await until(() => v.events('peer').some((e) => e.state === 'connected' && e.name === 'alice'), 10_000, 'alice connected');
  const same = await claim(v, a.peerId, nonce, 'mallory', { role: 2 });
  await refused(same, 'same nonce');
  await keepsPlace(v, a, same, 'alice', 'same nonce');
  const fresh = await claim(v, a.peerId, randomBytes(16), 'mallory2', { role: 2 });
  await refused(fresh, 'fresh nonce');
  await keepsPlace(v, a, fresh, 'alice', 'fresh nonce');
  assert.ok(!v.events('peer').some((e) => e.name === 'mallory' || e.name === 'mallory2'), 'never renamed to the claimant');
  await v.stop();
});

test('a live peer that coalesces its PONGs (answers only the latest PING) keeps its place against a claim', { timeout: 60_000 }, async () => {
  // Keepalive PINGs every 150 ms; A answers only the latest PING, 600 ms after the first one it
  // owes (as a busy peer's reply queue does), so the claim's check PING is always superseded.
  const v = await startVictim({ keepaliveInterval: 150, keepaliveTimeout: 3000 });
  const nonce = randomBytes(16);
  const a = await rawPeer(v, { displayName: 'Busy', nonce });
  a.reader.answerPings = false;
  let latest = -1;
  let timer: NodeJS.Timeout | undefined;
  a.socket.on('data', () => {
    const pings = a.reader.ofType(0x04);
    const last = pings[pings.length - 1];
    if (!last) return;
    const seq = last.readUInt32BE(1);
    if (seq === latest) return;
    latest = seq;
    timer ??= setTimeout(() => {
      timer = undefined;
      const answer = Buffer.alloc(5);
      answer[0] = 0x05;
      answer.writeUInt32BE(latest >>> 0, 1);
      if (!a.socket.destroyed) a.socket.write(frame(answer));
    }, 600);
  });
  await sleep(1000);
  for (let i = 0; i < 3; i++) {
    const c = await claim(v, a.peerId, randomBytes(16), `Mallory${i}`);
    await refused(c, `claim ${i}`);
    c.socket.destroy();
  }
  assert.ok(v.events('peer').every((e) => e.peer !== uuidOf(a.peerId) || e.state === 'connected'), 'A never left');
  clearTimeout(timer);
});
