/**
 * The fault lab: real network faults on the hosts of a netns `Lab`, built from what this
 * kernel has. There is **no netem** here (../shared/netlab/README.md), so:
 *
 * - a slow link with queueing delay: `tc … tbf` on the host's `eth0` (egress) and/or on
 *   its bridge port in the switch namespace (egress of the bridge = the host's ingress);
 * - random loss: an nftables rule `numgen random mod 10000 < p drop` in a table of the
 *   host's own namespace, on `eth0` only (loopback traffic inside the host is untouched);
 * - UDP blocked: an nftables table dropping UDP on `eth0` (mDNS port 5353 optionally kept);
 * - a cut: `ip link set eth0 down` in the host (the host sees its interface go away, as
 *   PathMonitor does) or the bridge port down in the switch (the host notices nothing);
 * - a frozen process: SIGSTOP / SIGCONT; a killed one: SIGKILL;
 * - fixed delay and jitter: a user-space relay process (fault-relay.ts) in a lab host that
 *   forwards TCP and UDP to a target with the delay; only traffic sent to it is delayed.
 *
 * Every fault returns a `Fault` whose `remove()` undoes it; `clear()` undoes all of them,
 * and the lab's teardown calls `clear()` first (also when a test failed), so frozen
 * processes are thawed and links restored before the namespaces are deleted. Frozen pids
 * are also thawed from a process 'exit' hook. Faults of one kind on one host replace each
 * other (a second `loss()` on h1 replaces the first).
 */
import { fileURLToPath } from 'node:url';
import { createLab, type Host, type Lab, type LabOptions } from './netns.js';
import { run, waitForJson, type TrackedProcess } from './proc.js';
import type { RelayConfig } from './fault-relay.js';

export type HostRef = number | Host;
/** `out`: packets leaving the host on eth0; `in`: packets arriving on eth0. */
export type Direction = 'out' | 'in' | 'both';

export interface ShapeOptions {
  /** tbf rate, tc syntax: `'10mbit'`, `'512kbit'`. */
  rate: string;
  /** Bucket size, tc syntax (default `'32kb'`; must be ≥ rate / HZ). */
  burst?: string;
  /** Longest a packet may wait in the queue before it is dropped (default `'400ms'`): the queueing delay bound. */
  latency?: string;
  /** Default `'out'`; `'in'` shapes the host's bridge port (the switch's egress towards the host). */
  direction?: Direction;
}

export interface LossOptions {
  /** Default `'both'`. */
  direction?: Direction;
  /** Only this protocol (default: every IPv4/IPv6 packet on eth0). */
  protocol?: 'tcp' | 'udp';
}

export interface BlockUdpOptions {
  /** Keep UDP to or from port 5353 (mDNS) flowing, so discovery still works. Default false. */
  allowMdns?: boolean;
  /** Default `'both'`. */
  direction?: Direction;
}

export interface RelayOptions {
  /** Port the relay listens on in its host (TCP and/or UDP). */
  port: number;
  /** Where it forwards to. */
  to: { host: string; port: number };
  /** Delay added in each direction, ms (a round trip gains twice this). */
  delayMs: number;
  /** Extra uniform random delay 0..jitterMs per chunk/datagram (TCP keeps order). */
  jitterMs?: number;
  /** Default `'both'`. */
  protocol?: 'tcp' | 'udp' | 'both';
}

/** One fault in place; `remove()` undoes it (idempotent). */
export interface Fault {
  /** e.g. `loss h1 10% both`. */
  readonly what: string;
  remove(): Promise<void>;
}

/** A running delay relay: dial `address`:`port` instead of the target. */
export interface RelayFault extends Fault {
  /** The relay host's address (IPv4 if it has one). */
  readonly address: string;
  readonly port: number;
  readonly process: TrackedProcess;
}

export type ProbeMode = 'udp-sink' | 'udp-send' | 'udp-echo' | 'udp-ask' | 'tcp-sink' | 'tcp-send' | 'tcp-connect';

const PROBE = fileURLToPath(new URL('./fault-probe.js', import.meta.url));
const RELAY = fileURLToPath(new URL('./fault-relay.js', import.meta.url));
const LOSS_TABLE = 'faultlab_loss';
const UDP_TABLE = 'faultlab_udp';

const frozenEverywhere = new Set<number>();
process.on('exit', () => {
  for (const pid of frozenEverywhere) signalPid(pid, 'SIGCONT');
});

function signalPid(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

function pidOf(p: TrackedProcess | number): number {
  const pid = typeof p === 'number' ? p : p.pid;
  if (pid === undefined) throw new Error('process has no pid');
  return pid;
}

function directions(d: Direction): Array<'out' | 'in'> {
  return d === 'both' ? ['out', 'in'] : [d];
}

/** The tc/nft/ip fault operations on one Lab. Get one with `faultLab(lab)` or `createFaultLab()`. */
export class FaultLab {
  readonly lab: Lab;
  readonly #faults = new Map<string, Fault>();
  readonly #frozen = new Set<number>();

  constructor(lab: Lab) {
    this.lab = lab;
    lab.onTeardown(() => this.clear());
  }

  /**
   * Wire-sized packets: segmentation offload off (`gso_max_segs 1`) on every host's eth0.
   * Without it TCP hands the veth 64 KiB GSO super-packets, so netfilter (loss) sees — and
   * drops — a few huge packets instead of many MTU-sized ones, and 10 % "loss" costs a
   * transfer almost nothing. A socket takes the setting when it connects: `createFaultLab`
   * calls this before any test traffic; call it yourself on a lab from `createLab`.
   */
  async wireSizedPackets(): Promise<void> {
    for (const host of this.lab.hosts) await this.lab.ip(host, ['link', 'set', 'eth0', 'gso_max_segs', '1']);
  }

  /** Faults currently in place (their `what`). */
  active(): string[] {
    return [...this.#faults.values()].map((f) => f.what);
  }

  #add(key: string, what: string, undo: () => Promise<void>): Fault {
    let done = false;
    const fault: Fault = {
      what,
      remove: async () => {
        if (done) return;
        done = true;
        if (this.#faults.get(key) === fault) this.#faults.delete(key);
        await undo();
      },
    };
    this.#faults.set(key, fault);
    return fault;
  }

  async #replace(key: string): Promise<void> {
    await this.#faults.get(key)?.remove();
  }

  /**
   * A slow link: token bucket filter (`tc qdisc replace … root tbf rate R burst B latency L`)
   * on the host's eth0 (`out`) and/or its bridge port (`in`). Queueing delay grows up to
   * `latency` when the sender outruns `rate`; packets beyond that are dropped.
   */
  async shape(h: HostRef, opts: ShapeOptions): Promise<Fault> {
    const host = this.lab.host(h);
    const d = opts.direction ?? 'out';
    const key = `shape:${host.ns}`;
    await this.#replace(key);
    const targets = directions(d).map((dir) => (dir === 'out' ? { ns: host.ns, dev: 'eth0' } : { ns: this.lab.switchNs, dev: host.port }));
    for (const t of targets) {
      await run('tc', ['-n', t.ns, 'qdisc', 'replace', 'dev', t.dev, 'root', 'tbf', 'rate', opts.rate, 'burst', opts.burst ?? '32kb', 'latency', opts.latency ?? '400ms']);
    }
    return this.#add(key, `shape h${host.index} ${opts.rate} ${d}`, async () => {
      for (const t of targets) await run('tc', ['-n', t.ns, 'qdisc', 'del', 'dev', t.dev, 'root'], { check: false });
    });
  }

  async unshape(h: HostRef): Promise<void> {
    await this.#replace(`shape:${this.lab.host(h).ns}`);
  }

  /**
   * Random loss of `percent` % (0.01 % steps) of the packets crossing the host's eth0,
   * each packet drawn independently (nft `numgen random`).
   */
  async loss(h: HostRef, percent: number, opts: LossOptions = {}): Promise<Fault> {
    if (!(percent >= 0 && percent <= 100)) throw new RangeError(`loss percent ${percent} not in 0..100`);
    const host = this.lab.host(h);
    const d = opts.direction ?? 'both';
    const key = `loss:${host.ns}`;
    await this.#replace(key);
    const proto = opts.protocol ? `meta l4proto ${opts.protocol} ` : '';
    const threshold = Math.round(percent * 100);
    const chains = directions(d).map((dir) => {
      const hook = dir === 'out' ? 'output' : 'input';
      const ifname = dir === 'out' ? 'oifname' : 'iifname';
      return `chain ${dir} { type filter hook ${hook} priority 0; policy accept; ${ifname} "eth0" ${proto}numgen random mod 10000 < ${threshold} counter drop; }`;
    });
    await this.#nftTable(host, LOSS_TABLE, chains);
    return this.#add(key, `loss h${host.index} ${percent}% ${d}${opts.protocol ? ` ${opts.protocol}` : ''}`, () => this.#nftDelete(host, LOSS_TABLE));
  }

  /**
   * Packets the host's `loss` (or `blockUdp`) rules dropped so far (nft counters), 0 when
   * none is in place: proof that a fault actually hit the traffic of a test.
   */
  async dropped(h: HostRef, kind: 'loss' | 'blockUdp' = 'loss'): Promise<number> {
    const host = this.lab.host(h);
    const r = await this.lab.exec(host, 'nft', ['list', 'table', 'inet', kind === 'loss' ? LOSS_TABLE : UDP_TABLE], { check: false });
    let n = 0;
    for (const m of r.stdout.matchAll(/counter packets (\d+) bytes \d+ drop/g)) n += Number(m[1]);
    return n;
  }

  async unloss(h: HostRef): Promise<void> {
    await this.#replace(`loss:${this.lab.host(h).ns}`);
  }

  /** Drops every UDP packet on the host's eth0 (except mDNS with `allowMdns`); TCP is untouched. */
  async blockUdp(h: HostRef, opts: BlockUdpOptions = {}): Promise<Fault> {
    const host = this.lab.host(h);
    const d = opts.direction ?? 'both';
    const key = `udp:${host.ns}`;
    await this.#replace(key);
    const chains = directions(d).map((dir) => {
      const hook = dir === 'out' ? 'output' : 'input';
      const ifname = dir === 'out' ? 'oifname' : 'iifname';
      const keep = opts.allowMdns ? `${ifname} "eth0" udp dport 5353 accept; ${ifname} "eth0" udp sport 5353 accept; ` : '';
      return `chain ${dir} { type filter hook ${hook} priority 0; policy accept; ${keep}${ifname} "eth0" meta l4proto udp counter drop; }`;
    });
    await this.#nftTable(host, UDP_TABLE, chains);
    return this.#add(key, `blockUdp h${host.index} ${d}${opts.allowMdns ? ' (mDNS kept)' : ''}`, () => this.#nftDelete(host, UDP_TABLE));
  }

  async unblockUdp(h: HostRef): Promise<void> {
    await this.#replace(`udp:${this.lab.host(h).ns}`);
  }

  /**
   * Cuts the host off. `'host'` (default): its eth0 goes down, so the host's own stack
   * and PathMonitor see the interface vanish (addresses, routes gone; `restore` puts them
   * back). `'switch'`: its bridge port goes down; the host notices nothing.
   */
  async cut(h: HostRef, where: 'host' | 'switch' = 'host'): Promise<Fault> {
    const host = this.lab.host(h);
    const key = `cut:${host.ns}`;
    await this.#replace(key);
    await this.lab.linkDown(host, where);
    return this.#add(key, `cut h${host.index} at ${where}`, () => this.lab.linkUp(host, where));
  }

  /** Undoes `cut(h)`, then waits (≤ 15 s) until the host is reachable again (see `settle`). */
  async restore(h: HostRef): Promise<void> {
    const had = this.#faults.has(`cut:${this.lab.host(h).ns}`);
    await this.#replace(`cut:${this.lab.host(h).ns}`);
    if (had) await this.settle(h);
  }

  /**
   * Waits until host `h` (default: every host) and another host reach each other — a TCP
   * round trip to a closed port — or `timeoutMs` passes; resolves whether they did. A link
   * that comes up takes effect when the kernel's link-watch work runs, and that needs the
   * global rtnl lock: while other labs create or delete namespaces it was seen to take
   * seconds, during which the host receives but does not transmit.
   */
  async settle(h?: HostRef, timeoutMs = 15_000): Promise<boolean> {
    const hosts = h === undefined ? this.lab.hosts.slice(1) : [this.lab.host(h)];
    const deadline = Date.now() + timeoutMs;
    for (const host of hosts) {
      const other = this.lab.hosts.find((x) => x !== host && ((host.ipv4 !== undefined && x.ipv4 !== undefined) || (host.ipv6 !== undefined && x.ipv6 !== undefined)));
      const address = other?.ipv4 !== undefined && host.ipv4 !== undefined ? host.ipv4 : host.ipv6;
      if (!other || address === undefined) continue;
      let ok = false;
      while (!ok && Date.now() < deadline) ok = await this.lab.reach(other, address, Math.min(1000, Math.max(100, deadline - Date.now())));
      if (!ok) return false;
    }
    return true;
  }

  /** SIGSTOP: the process keeps its sockets but answers nothing until `thaw`. */
  freeze(p: TrackedProcess | number): Fault {
    const pid = pidOf(p);
    if (!signalPid(pid, 'SIGSTOP')) throw new Error(`cannot SIGSTOP pid ${pid}`);
    this.#frozen.add(pid);
    frozenEverywhere.add(pid);
    return this.#add(`freeze:${pid}`, `freeze pid ${pid}`, async () => {
      this.#frozen.delete(pid);
      frozenEverywhere.delete(pid);
      signalPid(pid, 'SIGCONT');
    });
  }

  async thaw(p: TrackedProcess | number): Promise<void> {
    await this.#replace(`freeze:${pidOf(p)}`);
  }

  /** Kills a process (default SIGKILL: no goodbye on the wire) and waits for it to exit if tracked. */
  async kill(p: TrackedProcess | number, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = pidOf(p);
    await this.#replace(`freeze:${pid}`);
    if (typeof p === 'number') {
      signalPid(pid, sig);
      return;
    }
    p.signal(sig);
    await p.exited;
  }

  /**
   * Fixed delay and jitter, which tbf cannot give: a user-space relay (fault-relay.ts) in
   * host `h` listening on `port`, forwarding to `to` with `delayMs` (+ random `jitterMs`) in
   * each direction. Only traffic sent to the relay is delayed: dial `address`:`port`.
   */
  async relay(h: HostRef, opts: RelayOptions): Promise<RelayFault> {
    const host = this.lab.host(h);
    const key = `relay:${host.ns}:${opts.port}`;
    await this.#replace(key);
    const cfg: RelayConfig = { port: opts.port, host: opts.to.host, targetPort: opts.to.port, delayMs: opts.delayMs, jitterMs: opts.jitterMs ?? 0, protocol: opts.protocol ?? 'both' };
    const proc = this.lab.spawnNode(host, RELAY, [JSON.stringify(cfg)], { label: `relay h${host.index}:${opts.port} → ${opts.to.host}:${opts.to.port}` });
    await waitForJson<{ ready?: boolean }>(proc, (o) => o.ready === true, 20_000, { what: 'relay ready' });
    const address = host.ipv4 ?? host.ipv6 ?? '';
    const fault = this.#add(key, `relay h${host.index}:${opts.port} → ${opts.to.host}:${opts.to.port} +${opts.delayMs}ms${opts.jitterMs ? ` ±${opts.jitterMs}` : ''}`, async () => {
      await proc.stop(1000);
    });
    return { what: fault.what, remove: () => fault.remove(), address, port: opts.port, process: proc };
  }

  /** Undoes every fault in place (thaws, restores links, removes qdiscs and nft tables). */
  async clear(): Promise<void> {
    const all = [...this.#faults.values()];
    // Thaw first: a frozen process must not stay frozen because a later undo failed.
    all.sort((a, b) => Number(b.what.startsWith('freeze')) - Number(a.what.startsWith('freeze')));
    for (const f of all) {
      try {
        await f.remove();
      } catch {
        // keep undoing the others
      }
    }
  }

  /** Starts a traffic probe (test/harness/fault-probe.ts) inside a host; modes documented there. */
  probe(h: HostRef | string, mode: ProbeMode, args: ReadonlyArray<string | number>): TrackedProcess {
    return this.lab.spawnNode(h, PROBE, [mode, ...args.map(String)], { label: `probe ${mode} ${args.join(' ')}` });
  }

  async #nftTable(host: Host, table: string, chains: string[]): Promise<void> {
    // `table x` + `delete table x` first: replaces an existing table atomically (one nft -f transaction).
    const script = `table inet ${table}\ndelete table inet ${table}\ntable inet ${table} {\n${chains.map((c) => `  ${c}`).join('\n')}\n}\n`;
    await this.lab.exec(host, 'nft', ['-f', '-'], { input: script });
  }

  async #nftDelete(host: Host, table: string): Promise<void> {
    await this.lab.exec(host, 'nft', ['delete', 'table', 'inet', table], { check: false });
  }
}

const byLab = new WeakMap<Lab, FaultLab>();

/** The FaultLab of a lab (one per lab, made on first use). */
export function faultLab(lab: Lab): FaultLab {
  let f = byLab.get(lab);
  if (!f) {
    f = new FaultLab(lab);
    byLab.set(lab, f);
  }
  return f;
}

/** `createLab(opts)` plus its FaultLab, with wire-sized packets (see `wireSizedPackets`), once every host is reachable (`settle`). */
export async function createFaultLab(opts: LabOptions = {}): Promise<FaultLab> {
  const lab = await createLab(opts);
  const fl = faultLab(lab);
  try {
    await fl.wireSizedPackets();
    await fl.settle();
  } catch (err) {
    await lab.teardown();
    throw err;
  }
  return fl;
}
