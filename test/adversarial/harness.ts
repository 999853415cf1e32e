/**
 * Adversarial tests: a victim session in its own process (victim.ts) and an attacker written
 * from raw sockets and hand-built frames — deliberately not the session's own codec or client
 * code, so a bug shared by both sides cannot hide an attack. Byte layouts: docs/session.md.
 *
 *   const v = await startVictim({ serviceType: 'adv', advertise: false, browse: false });
 *   const s = await rawConnect(v.port);
 *   s.write(frame(hello({ peerId, nonce })));
 *   const before = await v.cost(); ... attack ...; const after = await v.cost();
 *
 * Victims listen on 127.0.0.1 only (`interfaces: ['lo']`, advertising and browsing off unless
 * a test turns them on inside a namespace). Every socket and victim is closed by `cleanup()`.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { spawnTracked, waitForJson, type TrackedProcess } from '../harness/proc.js';
import type { PeerSessionOptions } from '../../src/session/options.js';
import type { Lab } from '../harness/netns.js';

const VICTIM = fileURLToPath(new URL('./victim.js', import.meta.url));

export interface VictimCost {
  /** process.cpuUsage() of the victim, µs. */
  cpu: { user: number; system: number };
  rss: number;
  peakRss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  fds: number;
  /** Threads of the victim process (/proc/self/task): the main thread, V8's and libuv's, worker threads. */
  threads?: number;
  /** Established TCP connections this process dialled. */
  outgoing: number;
  /** Established TCP connections it accepted. */
  incoming: number;
  files: string[];
  /** The keepalive interval and timeout on each connected peer's connection (peerInfo().keepalive). */
  keepaliveMs: Array<{ intervalMs: number; timeoutMs: number } | null>;
  stats: { controlConnections: number; handshakes: number; streams: number; targets: number; budgets: Record<string, number> } & Record<string, unknown>;
  /** The mDNS engine's packet counters, when the victim was started with `mdnsStats: true`. */
  mdns?: { received: number; malformed: number; offLink: number; sent: number; sendErrors: number };
  /** What the engine's limits held back (mDNS engine owned by the victim): `Mdns.limited`. */
  mdnsLimited?: Record<string, number>;
}

export interface Victim {
  proc: TrackedProcess;
  port: number;
  id: string;
  cost(): Promise<VictimCost>;
  reset(): Promise<void>;
  /** Events the victim printed so far with `ev` equal to `name`. */
  events(name: string): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export type VictimOptions = Partial<PeerSessionOptions> & { peerIdHex?: string; acceptResources?: boolean; mdnsStats?: boolean; holdInvitations?: boolean; holdResources?: boolean };

/** Where to run the victim: a host of a namespace lab (default: this machine, on `lo`). */
export interface VictimPlacement {
  lab: Lab;
  host: number;
}

/**
 * The victim's young generation is pinned to 16 MiB semi-spaces (Node 20's default). Newer V8
 * (Node 24 and later) sizes it up to 3 × 32 MiB on large machines, and a flood of small frames
 * fills it with short-lived garbage before a scavenge: peak RSS then rises by ~95 MiB whatever
 * the attack does, which says nothing about what the attack makes us *keep*. Pinned, the RSS
 * figures measure the same thing on every Node line (CI failed on 24 without it).
 */
const VICTIM_V8 = ['--max-semi-space-size=16'];

const victims = new Set<Victim>();
const sockets = new Set<Socket>();

export async function startVictim(options: VictimOptions = {}, placement?: VictimPlacement): Promise<Victim> {
  const opts = { serviceType: 'adversary', advertise: false, browse: false, interfaces: ['lo'], ...options };
  const proc = placement
    ? placement.lab.spawn(placement.host, process.execPath, [...VICTIM_V8, VICTIM, JSON.stringify(opts)], { label: `victim@h${placement.host}`, stdin: true })
    : spawnTracked(process.execPath, [...VICTIM_V8, VICTIM, JSON.stringify(opts)], { label: 'victim', stdin: true });
  const ready = await waitForJson<{ ev: string; port: number; id: string }>(proc, (e) => e.ev === 'ready', 20_000);
  const v: Victim = {
    proc,
    port: ready.port,
    id: ready.id,
    async cost() {
      const n = proc.stdoutLines.length;
      proc.writeLine('cost');
      return waitForJson<VictimCost & { ev: string }>(proc, (e) => e.ev === 'cost', 30_000, { since: n });
    },
    async reset() {
      const n = proc.stdoutLines.length;
      proc.writeLine('reset');
      await waitForJson(proc, (e) => e.ev === 'reset', 10_000, { since: n });
    },
    events(name) {
      const out: Array<Record<string, unknown>> = [];
      for (const l of proc.stdoutLines) {
        try {
          const o = JSON.parse(l) as Record<string, unknown>;
          if (o.ev === name) out.push(o);
        } catch {
          /* not JSON */
        }
      }
      return out;
    },
    async stop() {
      victims.delete(v);
      await proc.stop();
    },
  };
  victims.add(v);
  return v;
}

/**
 * A raw TCP connection to 127.0.0.1:port, tracked for cleanup(). `localAddress` binds the
 * client side (e.g. 127.0.0.5: every 127.0.0.0/8 address is on `lo`), to appear as another host.
 */
export function rawConnect(port: number, host = '127.0.0.1', localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, ...(localAddress !== undefined ? { localAddress } : {}) });
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.once('connect', () => {
      s.removeListener('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Closes every raw socket and stops every victim. */
export async function cleanup(): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all([...victims].map((v) => v.stop()));
}

// ---- hand-built frames (docs/session.md "Wire") ------------------------------------------

/** The length-prefix framer: u32 big-endian length, then the message. */
export function frame(body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length);
  return Buffer.concat([h, body]);
}

/** A framer-level control frame: high bit of the length word set; body = type byte (1 ping, 2 pong) + payload. */
export function framerPing(kind: 1 | 2 = 1, payload: Buffer = Buffer.alloc(8)): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE((0x80000000 | (1 + payload.length)) >>> 0);
  return Buffer.concat([h, Buffer.from([kind]), payload]);
}

function str8(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

function str16(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const h = Buffer.alloc(2);
  h.writeUInt16BE(b.length);
  return Buffer.concat([h, b]);
}

export interface HelloFields {
  peerId?: Buffer;
  nonce?: Buffer;
  role?: 0 | 1 | 2;
  capabilities?: number;
  maxMessageSize?: number;
  listenPort?: number;
  lastGeneration?: number;
  displayName?: string;
  instanceName?: string;
}

/** HELLO (0x01). Defaults: random id and nonce, streams + resources capabilities, 4 MiB. */
export function hello(f: HelloFields = {}): Buffer {
  const fixed = Buffer.alloc(1 + 1 + 1 + 16 + 16 + 4 + 4 + 2 + 4);
  let o = 0;
  fixed[o++] = 0x01;
  fixed[o++] = 1; // v
  fixed[o++] = f.role ?? 0;
  (f.peerId ?? randomBytes(16)).copy(fixed, o);
  o += 16;
  (f.nonce ?? randomBytes(16)).copy(fixed, o);
  o += 16;
  fixed.writeUInt32BE(f.capabilities ?? 0b11, o);
  o += 4;
  fixed.writeUInt32BE(f.maxMessageSize ?? 4 * 1024 * 1024, o);
  o += 4;
  fixed.writeUInt16BE(f.listenPort ?? 0, o);
  o += 2;
  fixed.writeUInt32BE(f.lastGeneration ?? 0, o);
  return Buffer.concat([fixed, str8(f.displayName ?? 'mallory'), str8(f.instanceName ?? '')]);
}

/** HELLO capability bit: an INVITE follows (docs/session.md "Invitations"). */
export const INVITE_CAPABILITY = 1 << 16;

/** INVITE (0x78): u32 timeout ms, u16 context length, context. */
export function invite(timeoutMs: number, context: Buffer, declaredLength = context.length): Buffer {
  const b = Buffer.alloc(7);
  b[0] = 0x78;
  b.writeUInt32BE(timeoutMs >>> 0, 1);
  b.writeUInt16BE(declaredLength, 5);
  return Buffer.concat([b, context]);
}

/** PING (0x04) / PONG (0x05) with a u32 sequence number. */
export function ping(seq: number, type: 0x04 | 0x05 = 0x04): Buffer {
  const b = Buffer.alloc(5);
  b[0] = type;
  b.writeUInt32BE(seq >>> 0, 1);
  return b;
}

/** DATA (0x06). */
export function data(payload: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from([0x06]), Buffer.from(payload)]);
}

/** STREAM_OFFER (0x07): token, kind (0 app, 1 resource), flags (bit 0 dialBack), name, meta. */
export function streamOffer(f: { token?: Buffer; kind?: number; dialBack?: boolean; name?: string; meta?: Buffer } = {}): Buffer {
  const meta = f.meta ?? Buffer.alloc(0);
  const ml = Buffer.alloc(2);
  ml.writeUInt16BE(meta.length);
  return Buffer.concat([Buffer.from([0x07]), f.token ?? randomBytes(16), Buffer.from([f.kind ?? 0, f.dialBack ? 1 : 0]), str16(f.name ?? 's'), ml, meta]);
}

/** STREAM_BIND (0x20): first message of a stream connection. */
export function streamBind(peerId: Buffer, token: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x20, 1]), peerId, token]);
}

/** Splits a byte stream into framed messages (both control frames and messages). */
export class FrameReader {
  #buf = Buffer.alloc(0);
  readonly messages: Buffer[] = [];
  controls = 0;
  /** Answer the victim's PINGs with PONGs (as a live peer does). Default true. */
  answerPings = true;
  readonly #socket: Socket;
  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (c: Buffer) => this.push(c));
  }
  push(c: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, c]);
    while (this.#buf.length >= 4) {
      const word = this.#buf.readUInt32BE(0);
      const control = (word & 0x80000000) !== 0;
      const len = word & 0x7fffffff;
      if (this.#buf.length < 4 + len) return;
      const body = this.#buf.subarray(4, 4 + len);
      this.#buf = this.#buf.subarray(4 + len);
      if (control) this.controls++;
      else {
        this.messages.push(Buffer.from(body));
        if (body[0] === 0x04 && this.answerPings && !this.#socket.destroyed) this.#socket.write(frame(ping(body.readUInt32BE(1), 0x05)));
      }
    }
  }
  /** Messages received so far whose type byte is `type`. */
  ofType(type: number): Buffer[] {
    return this.messages.filter((m) => m[0] === type);
  }
}

/** WELCOME (0x02) with a generation number (≠ 0). */
export function welcome(generation = 1): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 0x02;
  b.writeUInt32BE(generation >>> 0, 1);
  return b;
}

/** A random peer id that is smaller than `than` as a 128-bit number, so the victim decides (docs/session.md). */
export function smallerId(than: string): Buffer {
  const limit = idBytes(than);
  for (;;) {
    const id = randomBytes(16);
    id[0] = Math.floor((limit[0] ?? 0) * Math.random());
    if (Buffer.compare(id, limit) < 0) return id;
  }
}

/**
 * A raw control connection that completes the handshake the way docs/session.md says: HELLO both
 * ways, then WELCOME from the deciding side (the larger id). Resolves once the victim reports
 * the peer connected. `fields.peerId` defaults to an id smaller than the victim's.
 */
export async function rawPeer(v: Victim, fields: HelloFields = {}): Promise<{ socket: Socket; reader: FrameReader; peerId: Buffer }> {
  const socket = await rawConnect(v.port);
  const reader = new FrameReader(socket);
  const peerId = fields.peerId ?? smallerId(v.id);
  socket.write(frame(hello({ ...fields, peerId })));
  const deadline = Date.now() + 10_000;
  while (reader.ofType(0x01).length === 0) {
    if (Date.now() > deadline || socket.destroyed) throw new Error('no HELLO from the victim');
    await new Promise((r) => setTimeout(r, 10));
  }
  if (Buffer.compare(peerId, idBytes(v.id)) > 0) socket.write(frame(welcome(1 + Math.floor(Math.random() * 1e9))));
  else {
    while (reader.ofType(0x02).length === 0) {
      if (reader.ofType(0x03).length > 0) throw new Error('the victim said BYE instead of WELCOME');
      if (Date.now() > deadline || socket.destroyed) throw new Error('no WELCOME from the victim');
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  return { socket, reader, peerId };
}

/** The 16 id bytes of a UUID string. */
export function idBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

export const MiB = 1024 * 1024;

/** Resolves true if `s` is closed by the other side within `ms` (undefined: reset while connecting). */
export function closedWithin(s: Socket | undefined, ms: number): Promise<boolean> {
  if (s === undefined || s.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    // A paused socket would not notice a FIN: keep reading (and discarding).
    s.resume();
  });
}
