/**
 * Several test "hosts" on one machine: each host is a network namespace with a veth
 * `eth0` plugged into a bridge that lives in its own namespace (`<prefix>-sw`), so no
 * packet of a test ever reaches the machine's real interfaces. Recipe: ../shared/netlab.
 *
 * Every lab gets a prefix unique to this process (`pl<pid>x<n>`): test files run in
 * parallel processes and each builds its own namespaces. The namespaces are isolated from
 * one another, so every lab can use the same subnets. Teardown kills every process inside
 * the lab's namespaces (by PID, `ip netns pids`) and deletes them; it also runs from a
 * process 'exit' hook, and labs left behind by a dead test process are swept on the next
 * `createLab`.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { run, spawnTracked, sleep, waitForLine, type ExecOptions, type ExecResult, type SpawnTrackedOptions, type TrackedProcess } from './proc.js';

export interface HostOptions {
  /** No IPv4 address and no IPv4 multicast route: IPv6 (link-local + ULA) only. */
  ipv6Only?: boolean;
  /** No IPv6 at all on eth0 (disable_ipv6). */
  ipv4Only?: boolean;
}

export interface LabOptions {
  /** Number of hosts (default 2). */
  hosts?: number;
  /** Per-host options, index 0 = h1. */
  hostOptions?: HostOptions[];
  /** A short tag that makes the namespace names easier to read in `ip netns list`. */
  tag?: string;
}

export interface Host {
  /** The namespace name, e.g. `pl1234x1-h1`. */
  ns: string;
  /** 1-based host number. */
  index: number;
  /** IPv4 address on eth0 (undefined on IPv6-only hosts). */
  ipv4?: string;
  /** Unique local IPv6 address on eth0 (undefined on IPv4-only hosts). */
  ipv6?: string;
  /** The host's MAC on eth0 (link-local IPv6 derives from it). */
  mac: string;
  /** The bridge port name in the switch namespace. */
  port: string;
  options: HostOptions;
}

/** IPv4 subnet used inside every lab (namespaces are isolated, so labs never clash). */
export const LAB_V4_PREFIX = '10.77.0.';
export const LAB_V6_PREFIX = 'fd77::';
export const LAB_RUN_ROOT = '/run/peerlink-test';

let labCounter = 0;
const liveLabs = new Set<Lab>();

function ipCmd(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
  return run('ip', args, opts);
}

/** Pids of every process inside a namespace (empty if it does not exist). */
export function netnsPids(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

export function listNetns(): string[] {
  try {
    // /run/netns is where `ip netns add` puts its names; reading it avoids a process.
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killPids(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

/** Synchronous best-effort removal of namespaces (used by the exit hook and the sweep). */
function destroyNamespacesSync(names: readonly string[]): void {
  for (const ns of names) killPids(netnsPids(ns), 'SIGKILL');
  for (const ns of names) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/**
 * Deletes namespaces of labs whose creating process is gone (a crashed run), so they
 * do not confuse later runs. Only names of our own shape `pl<pid>x<n>-...` are touched.
 */
export function sweepStaleLabs(): void {
  const stale = listNetns().filter((ns) => {
    const m = /^pl(\d+)x\d+-/.exec(ns);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  });
  if (stale.length > 0) destroyNamespacesSync(stale);
  // per-namespace /etc files (`ip netns exec` bind-mounts /etc/netns/<ns>/*), e.g. resolv.conf
  try {
    for (const dir of readdirSync('/etc/netns')) {
      const m = /^pl(\d+)x\d+-/.exec(dir);
      if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(`/etc/netns/${dir}`, { recursive: true, force: true });
    }
  } catch {
    // no /etc/netns
  }
  try {
    for (const dir of readdirSync(LAB_RUN_ROOT)) {
      const m = /^pl(\d+)x\d+-/.exec(dir);
      if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(`${LAB_RUN_ROOT}/${dir}`, { recursive: true, force: true });
    }
  } catch {
    // no run root yet
  }
}

process.on('exit', () => {
  for (const lab of liveLabs) lab.teardownSync();
});

/** A namespace's command runner: `ip netns exec <ns> cmd args`. */
export class Namespace {
  readonly ns: string;
  constructor(ns: string) {
    this.ns = ns;
  }

  exec(cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns, cmd, ...args], opts);
  }

  spawn(cmd: string, args: readonly string[] = [], opts: SpawnTrackedOptions = {}): TrackedProcess {
    return spawnTracked('ip', ['netns', 'exec', this.ns, cmd, ...args], { ...opts, label: opts.label ?? `${this.ns}: ${[cmd, ...args].join(' ').slice(0, 140)}` });
  }

  /** `ip -n <ns> ...` */
  ip(args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return ipCmd(['-n', this.ns, ...args], opts);
  }
}

export class Lab {
  readonly prefix: string;
  readonly switchNs: string;
  readonly hosts: Host[] = [];
  /** Extra namespaces made by this lab (loopback-only ones). */
  readonly extraNamespaces: string[] = [];
  /** Runtime directory for daemons of this lab (avahi, dbus). */
  readonly runDir: string;
  private tornDown = false;
  private sniffAddressed = false;
  private readonly teardownHooks: Array<() => Promise<void> | void> = [];

  constructor(prefix: string) {
    this.prefix = prefix;
    this.switchNs = `${prefix}-sw`;
    this.runDir = `${LAB_RUN_ROOT}/${prefix}`;
  }

  /** Every namespace this lab created. */
  get namespaces(): string[] {
    return [...this.hosts.map((h) => h.ns), ...this.extraNamespaces, this.switchNs];
  }

  host(i: number | Host): Host {
    if (typeof i !== 'number') return i;
    const h = this.hosts[i - 1];
    if (!h) throw new Error(`lab ${this.prefix} has no host h${i}`);
    return h;
  }

  private nsOf(h: number | Host | string): string {
    return typeof h === 'string' ? h : this.host(h).ns;
  }

  /** Runs a command inside a host (or any namespace by name) to completion. */
  exec(h: number | Host | string, cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    return new Namespace(this.nsOf(h)).exec(cmd, args, opts);
  }

  /** Starts a tracked process inside a host; it is killed on teardown. */
  spawn(h: number | Host | string, cmd: string, args: readonly string[] = [], opts?: SpawnTrackedOptions): TrackedProcess {
    return new Namespace(this.nsOf(h)).spawn(cmd, args, opts);
  }

  /** Runs `node <script> args` inside a host with this Node binary. */
  spawnNode(h: number | Host | string, script: string, args: readonly string[] = [], opts?: SpawnTrackedOptions): TrackedProcess {
    return this.spawn(h, process.execPath, [script, ...args], opts);
  }

  ip(h: number | Host | string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return new Namespace(this.nsOf(h)).ip(args, opts);
  }

  /** Takes a host's eth0 down (the host sees its interface go down). */
  async linkDown(h: number | Host, where: 'host' | 'switch' = 'host'): Promise<void> {
    const host = this.host(h);
    if (where === 'host') await ipCmd(['-n', host.ns, 'link', 'set', 'eth0', 'down']);
    else await ipCmd(['-n', this.switchNs, 'link', 'set', host.port, 'down']);
  }

  /** Brings a host's eth0 back up (and re-adds the routes a link-down removed). */
  async linkUp(h: number | Host, where: 'host' | 'switch' = 'host'): Promise<void> {
    const host = this.host(h);
    if (where === 'switch') {
      await ipCmd(['-n', this.switchNs, 'link', 'set', host.port, 'up']);
      return;
    }
    await ipCmd(['-n', host.ns, 'link', 'set', 'eth0', 'up']);
    // IPv6 addresses are flushed on link down (keep_addr_on_down=0); routes via eth0 too.
    if (host.ipv6) await ipCmd(['-n', host.ns, '-6', 'addr', 'replace', `${host.ipv6}/64`, 'dev', 'eth0', 'nodad']);
    if (!host.options.ipv6Only) await ipCmd(['-n', host.ns, 'route', 'replace', '224.0.0.0/4', 'dev', 'eth0']);
  }

  /** IPv6 link-local address of a host's eth0 (without zone), once the kernel made it. */
  async linkLocal(h: number | Host, timeoutMs = 5000): Promise<string> {
    const host = this.host(h);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await ipCmd(['-n', host.ns, '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'], { check: false });
      const m = /inet6 (fe80::[0-9a-f:]+)\/64/.exec(r.stdout);
      if (m?.[1] && !/tentative/.test(r.stdout)) return m[1];
      await sleep(100);
    }
    throw new Error(`no IPv6 link-local address on ${host.ns} eth0 after ${timeoutMs} ms`);
  }

  /**
   * Reachability check without `ping` (not installed everywhere): a TCP connect to a
   * closed port from inside `from`; a refusal (RST) proves the round trip. Resolves true
   * when refused or connected, false on timeout or unreachable.
   */
  async reach(from: number | Host | string, address: string, timeoutMs = 5000): Promise<boolean> {
    const script = `const s=require('net').connect({host:process.argv[1],port:9});
      const done=(ok)=>{console.log(ok?'yes':'no');process.exit(0)};
      s.on('connect',()=>done(true));s.on('error',(e)=>done(e.code==='ECONNREFUSED'));
      setTimeout(()=>done(false),${timeoutMs});`;
    const r = await this.exec(from, process.execPath, ['-e', script, address], { timeoutMs: timeoutMs + 10_000 });
    return r.stdout.trim() === 'yes';
  }

  /**
   * Watches every mDNS packet on the lab's bridge (multicast only) from the switch
   * namespace, where no responder lives, so nothing is taken from the hosts. Lines are
   * summaries (see mdns-sniffer.ts); put `sniffer.tail()` in a failure message.
   */
  /** With `hex`, every line also carries the whole packet (` hex=…`). */
  async sniffMdns(options: { hex?: boolean } = {}): Promise<TrackedProcess> {
    if (!this.sniffAddressed) {
      // br0 needs addresses for the switch's own stack to join the groups on it
      await ipCmd(['-n', this.switchNs, 'addr', 'add', `${LAB_V4_PREFIX}254/24`, 'dev', 'br0']);
      await ipCmd(['-n', this.switchNs, 'route', 'add', '224.0.0.0/4', 'dev', 'br0']);
      this.sniffAddressed = true;
    }
    const script = fileURLToPath(new URL('./mdns-sniffer.js', import.meta.url));
    const p = this.spawn(this.switchNs, process.execPath, [script, `${LAB_V4_PREFIX}254`, 'br0', ...(options.hex ? ['hex'] : [])], { label: `${this.switchNs}: mdns sniffer` });
    await waitForLineOnce(p);
    return p;
  }

  /** Makes a namespace with only `lo`, multicast enabled on it (IPv4 and IPv6 routes). */
  async addLoopbackNamespace(name = 'lo'): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    await ipCmd(['netns', 'add', ns]);
    this.extraNamespaces.push(ns);
    await ipCmd(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ipCmd(['-n', ns, 'link', 'set', 'lo', 'multicast', 'on']);
    // libraries that do not set IP_MULTICAST_IF need the route; IPv6 mDNS needs the
    // ff00::/8 route in the local table or sendmsg() to ff02::fb fails.
    await ipCmd(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'lo']);
    await ipCmd(['-n', ns, '-6', 'route', 'add', 'multicast', 'ff00::/8', 'dev', 'lo', 'table', 'local']);
    return ns;
  }

  /** Adds one more host to the bridge after the lab was built. */
  async addHost(options: HostOptions = {}): Promise<Host> {
    const index = this.hosts.length + 1;
    ensureNeighbourCapacity(index);
    const host = await buildHost(this, index, options);
    this.hosts.push(host);
    return host;
  }

  /**
   * Runs `fn` first thing in `teardown()` (before processes are killed), e.g. to thaw
   * frozen processes or undo faults (see faultlab.ts). A hook that throws does not stop
   * the teardown.
   */
  onTeardown(fn: () => Promise<void> | void): void {
    this.teardownHooks.push(fn);
  }

  /** Kills every process in the lab's namespaces and deletes them. Idempotent. */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    for (const hook of this.teardownHooks.splice(0)) {
      try {
        await hook();
      } catch {
        // the namespaces go away below anyway
      }
    }
    const names = this.namespaces.filter((n) => listNetns().includes(n));
    const pidsOf = (): number[] => names.flatMap(netnsPids);
    killPids(pidsOf(), 'SIGTERM');
    // Give daemons a moment to exit cleanly (avahi sends goodbyes, nobody listens).
    for (let i = 0; i < 20 && pidsOf().length > 0; i++) await sleep(100);
    killPids(pidsOf(), 'SIGKILL');
    for (let i = 0; i < 20 && pidsOf().length > 0; i++) await sleep(50);
    for (const ns of names) await ipCmd(['netns', 'del', ns], { check: false });
    for (const ns of this.namespaces) rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
    this.tornDown = true;
    liveLabs.delete(this);
  }

  /** For the process 'exit' hook: no awaiting possible there. */
  teardownSync(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    destroyNamespacesSync(this.namespaces.filter((n) => listNetns().includes(n)));
    rmSync(this.runDir, { recursive: true, force: true });
    liveLabs.delete(this);
  }
}

function waitForLineOnce(p: TrackedProcess): Promise<string> {
  return waitForLine(p, (l) => l.includes('"ready"'), 30_000, { what: 'sniffer ready' });
}

/**
 * Neighbour entries a lab of `hosts` hosts needs when every host talks to every other: per
 * ordered pair one ARP entry (IPv4) and two NDP entries (IPv6 ULA and link-local, both of which
 * a peer's mDNS answers carry and a dial may use).
 */
export function neighbourEntriesFor(hosts: number): { arp: number; ndp: number } {
  const pairs = hosts * (hosts - 1);
  return { arp: pairs, ndp: 2 * pairs };
}

function readSysctl(path: string): number | undefined {
  try {
    const v = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes the kernel's neighbour tables (ARP and NDP) big enough for a lab of `hosts` hosts.
 *
 * The tables are not per namespace: every namespace of the machine shares one ARP table and
 * one NDP table, capped by `gc_thresh3` (default 1024, settable only in the root namespace's
 * `net.ipv{4,6}.neigh.default.*`). A full table refuses new entries ("neighbor table overflow!"
 * in dmesg, `table_fulls` in /proc/net/stat/arp_cache) and drops the packets that needed them:
 * SYNs, and the data of established connections whose entries forced GC evicted. 32 hosts
 * that all talk to each other need 992 ARP entries, 48 need 2256 — so a 48-host lab lost
 * more than half its connections while a real LAN of 48 machines (one table each) would not.
 * Raises `gc_thresh2` (above it, unreferenced entries older than 5 s are evicted) to the need
 * plus margin and `gc_thresh3` (the hard cap) to twice that; never lowers them, and leaves
 * them raised (labs of other test processes overlap; the values only bound memory, ~0.5 KiB
 * an entry). Returns what it set, or undefined when nothing needed raising or the sysctls
 * are not writable.
 */
export function ensureNeighbourCapacity(hosts: number): { family: 4 | 6; thresh2: number; thresh3: number }[] | undefined {
  const need = neighbourEntriesFor(hosts);
  const raised: { family: 4 | 6; thresh2: number; thresh3: number }[] = [];
  for (const [family, entries] of [[4, need.arp], [6, need.ndp]] as const) {
    const dir = `/proc/sys/net/ipv${family}/neigh/default`;
    // room for what the machine and other labs already hold
    const thresh2 = entries + 1024;
    const thresh3 = 2 * thresh2;
    const cur2 = readSysctl(`${dir}/gc_thresh2`);
    const cur3 = readSysctl(`${dir}/gc_thresh3`);
    if (cur2 === undefined || cur3 === undefined || (cur2 >= thresh2 && cur3 >= thresh3)) continue;
    try {
      // thresh3 first: the kernel does not check the order, but a reader should never see 2 > 3
      writeFileSync(`${dir}/gc_thresh3`, String(Math.max(cur3, thresh3)));
      writeFileSync(`${dir}/gc_thresh2`, String(Math.max(cur2, thresh2)));
      raised.push({ family, thresh2: Math.max(cur2, thresh2), thresh3: Math.max(cur3, thresh3) });
    } catch {
      // not root in the root namespace: the lab still works up to the default's size
    }
  }
  return raised.length > 0 ? raised : undefined;
}

async function buildHost(lab: Lab, index: number, options: HostOptions): Promise<Host> {
  const ns = `${lab.prefix}-h${index}`;
  const port = `p${index}`;
  const mac = `02:77:00:00:${(index >> 8).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
  const host: Host = { ns, index, mac, port, options };
  await ipCmd(['netns', 'add', ns]);
  // Settings for interfaces created later in this namespace: no duplicate address
  // detection (addresses are usable at once; nobody else uses them).
  const sysctls = ['net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0'];
  if (options.ipv4Only) sysctls.push('net.ipv6.conf.default.disable_ipv6=1');
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...sysctls]);
  await ipCmd(['-n', ns, 'link', 'set', 'lo', 'up']);
  // Created straight inside the two namespaces: the root namespace never sees the names.
  await ipCmd(['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', lab.switchNs]);
  await ipCmd(['-n', lab.switchNs, 'link', 'set', port, 'master', 'br0']);
  await ipCmd(['-n', lab.switchNs, 'link', 'set', port, 'up']);
  await ipCmd(['-n', ns, 'link', 'set', 'eth0', 'address', mac]);
  if (!options.ipv6Only) {
    host.ipv4 = `${LAB_V4_PREFIX}${index}`;
    await ipCmd(['-n', ns, 'addr', 'add', `${host.ipv4}/24`, 'dev', 'eth0']);
  }
  if (!options.ipv4Only) {
    host.ipv6 = `${LAB_V6_PREFIX}${index.toString(16)}`;
    await ipCmd(['-n', ns, '-6', 'addr', 'add', `${host.ipv6}/64`, 'dev', 'eth0', 'nodad']);
  }
  await ipCmd(['-n', ns, 'link', 'set', 'eth0', 'up']);
  // The connected /24 route does not cover 224.0.0.0/4: libraries that rely on a route
  // for multicast need this one. IPv6 gets ff00::/8 in the local table from the kernel.
  if (!options.ipv6Only) await ipCmd(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
  return host;
}

/**
 * Builds a lab: the switch namespace with bridge `br0` (multicast snooping off, so
 * multicast floods as on a plain hub) and `hosts` host namespaces on it.
 */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  sweepStaleLabs();
  labCounter++;
  const prefix = `pl${process.pid}x${labCounter}${opts.tag ? `-${opts.tag}` : ''}`;
  const lab = new Lab(prefix);
  liveLabs.add(lab);
  try {
    const sw = lab.switchNs;
    await ipCmd(['netns', 'add', sw]);
    await ipCmd(['-n', sw, 'link', 'set', 'lo', 'up']);
    await ipCmd(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    // No IGMP/MLD querier exists here: snooping would drop multicast. No STP delay either.
    await ipCmd(['-n', sw, 'link', 'set', 'br0', 'type', 'bridge', 'mcast_snooping', '0', 'stp_state', '0', 'forward_delay', '0']);
    await ipCmd(['-n', sw, 'link', 'set', 'br0', 'up']);
    const n = opts.hosts ?? 2;
    ensureNeighbourCapacity(n);
    for (let i = 1; i <= n; i++) {
      lab.hosts.push(await buildHost(lab, i, opts.hostOptions?.[i - 1] ?? {}));
    }
  } catch (err) {
    await lab.teardown();
    throw err;
  }
  return lab;
}

/** True when a namespace of this name exists. */
export function netnsExists(ns: string): boolean {
  return listNetns().includes(ns);
}
