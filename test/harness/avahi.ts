/**
 * Avahi inside a test namespace, without systemd: a private dbus-daemon (system bus
 * config, socket in the lab's runtime dir) and an avahi-daemon in a private mount
 * namespace whose /run/avahi-daemon is a bind mount of a per-daemon directory (Avahi's
 * pid file and socket paths are fixed, so this is what lets several run at once).
 * Every namespace shares the machine's host name, so each daemon gets its own.
 *
 * Avahi is never started in the root namespace: `startAvahi` refuses a namespace that
 * does not belong to the lab.
 */
import { mkdirSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import type { Lab, Host } from './netns.js';
import { waitForLine, sleep, type TrackedProcess } from './proc.js';
import { interopScript, SYSTEM_PYTHON } from './paths.js';

export interface AvahiOptions {
  /** Host name Avahi publishes (default `avahi-h<i>`). */
  hostName?: string;
  /** Extra `[server]` lines for avahi-daemon.conf (e.g. `use-ipv6=no`, `allow-interfaces=lo`). */
  serverConf?: string[];
  /** Start-up allowance (default 30 s; the machine is shared and slow). */
  timeoutMs?: number;
  /** Enable wide-area (unicast DNS-SD) browsing; Avahi asks the nameservers of /etc/resolv.conf (see /etc/netns/<ns>/resolv.conf). */
  wideArea?: boolean;
}

export class Avahi {
  readonly lab: Lab;
  readonly ns: string;
  readonly dir: string;
  readonly hostName: string;
  readonly env: NodeJS.ProcessEnv;
  readonly daemon: TrackedProcess;
  readonly dbus: TrackedProcess;

  constructor(lab: Lab, ns: string, dir: string, hostName: string, dbus: TrackedProcess, daemon: TrackedProcess) {
    this.lab = lab;
    this.ns = ns;
    this.dir = dir;
    this.hostName = hostName;
    this.dbus = dbus;
    this.daemon = daemon;
    this.env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/dbus.sock` };
  }

  /**
   * `avahi-browse -rpk type` (resolving, parsable, raw type names) as a tracked process.
   * `terminate: true` adds `-t` (dump what is known, then exit).
   */
  browse(type: string, opts: { terminate?: boolean } = {}): TrackedProcess {
    const args = ['-r', '-p', '-k', ...(opts.terminate ? ['-t'] : []), type];
    return this.lab.spawn(this.ns, 'avahi-browse', args, { env: this.env, label: `${this.ns}: avahi-browse ${args.join(' ')}` });
  }

  /** Runs `avahi-browse -rpkt type` to its end and returns the parsed lines. */
  async browseOnce(type: string, timeoutMs = 20_000): Promise<AvahiBrowseLine[]> {
    const r = await this.lab.exec(this.ns, 'avahi-browse', ['-r', '-p', '-k', '-t', type], { env: this.env, timeoutMs, check: false });
    return r.stdout.split('\n').map(parseAvahiBrowseLine).filter((l): l is AvahiBrowseLine => l !== undefined);
  }

  /**
   * `avahi-publish -s name type port txt...` as a tracked process; it runs until
   * stopped (SIGTERM withdraws the service, with goodbyes).
   */
  publish(name: string, type: string, port: number, txt: string[] = [], opts: { subtypes?: string[]; host?: string } = {}): TrackedProcess {
    const args = ['-s', ...(opts.subtypes ?? []).map((s) => `--subtype=${s}`), ...(opts.host ? ['-H', opts.host] : []), name, type, String(port), ...txt];
    return this.lab.spawn(this.ns, 'avahi-publish', args, { env: this.env, label: `${this.ns}: avahi-publish ${args.join(' ')}` });
  }

  /**
   * Publishes through Avahi's D-Bus API (test/interop/avahi_publish_dbus.py, needs
   * python3-dbus), which can change the TXT record: write `update k=v ...` to its stdin.
   * Prints JSON lines (`registered`, `updated`, `stopped`).
   */
  publishDbus(name: string, type: string, port: number, txt: string[] = []): TrackedProcess {
    return this.lab.spawn(this.ns, SYSTEM_PYTHON, [interopScript('avahi_publish_dbus.py'), name, type, String(port), ...txt], {
      env: { ...this.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      stdin: true,
      label: `${this.ns}: avahi_publish_dbus ${name}`,
    });
  }

  /** Waits until a publish process says its service is established; returns the final name. */
  async published(proc: TrackedProcess, timeoutMs = 20_000): Promise<string> {
    const pattern = /Established under name '(.*)'/;
    const line = await Promise.any([
      waitForLine(proc, (l) => pattern.test(l), timeoutMs, { what: 'avahi-publish "Established"' }),
      waitForLine(proc, (l) => pattern.test(l), timeoutMs, { stderr: true, what: 'avahi-publish "Established"' }),
    ]).catch((e: AggregateError) => {
      throw e.errors[0] as Error;
    });
    return pattern.exec(line)?.[1] ?? '';
  }

  /** Stops avahi-daemon and its dbus-daemon. */
  async stop(): Promise<void> {
    await this.daemon.stop(3000);
    await this.dbus.stop(2000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function dbusConf(dir: string): string {
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${dir}/dbus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/>
    <allow send_destination="*"/> <allow receive_sender="*"/>
  </policy>
</busconfig>
`;
}

function avahiConf(hostName: string, extra: readonly string[], wideArea = false): string {
  return [
    '[server]',
    `host-name=${hostName}`,
    'domain-name=local',
    'use-ipv4=yes',
    'use-ipv6=yes',
    'enable-dbus=yes',
    // tests publish and browse quickly; the default rate limit would drop packets
    'ratelimit-interval-usec=1000000',
    'ratelimit-burst=1000',
    ...extra,
    '[wide-area]',
    `enable-wide-area=${wideArea ? 'yes' : 'no'}`,
    '[publish]',
    'publish-hinfo=no',
    'publish-workstation=no',
    '[reflector]',
    '[rlimits]',
    '',
  ].join('\n');
}

/** Starts dbus + avahi-daemon inside a host (or another namespace of the lab). */
export async function startAvahi(lab: Lab, where: number | Host | string, opts: AvahiOptions = {}): Promise<Avahi> {
  const ns = typeof where === 'string' ? where : lab.host(where).ns;
  if (!lab.namespaces.includes(ns) || ns === lab.switchNs) throw new Error(`refusing to start Avahi outside the lab's host namespaces (${ns})`);
  const hostName = opts.hostName ?? `avahi-${ns.replace(/^.*-/, '')}`;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const dir = `${lab.runDir}/avahi-${ns}-${hostName}`;
  mkdirSync(`${dir}/run`, { recursive: true });
  mkdirSync('/run/avahi-daemon', { recursive: true });
  writeFileSync(`${dir}/dbus.conf`, dbusConf(dir));
  writeFileSync(`${dir}/avahi.conf`, avahiConf(hostName, opts.serverConf ?? [], opts.wideArea));

  const dbus = lab.spawn(ns, 'dbus-daemon', [`--config-file=${dir}/dbus.conf`, '--nofork', '--nopidfile'], { label: `${ns}: dbus-daemon` });
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(`${dir}/dbus.sock`)) {
    if (!dbus.running) throw new Error(`dbus-daemon did not start\n${dbus.tail()}`);
    if (Date.now() > deadline) throw new Error(`dbus-daemon socket did not appear\n${dbus.tail()}`);
    await sleep(50);
  }
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${dir}/dbus.sock` };
  const daemon = lab.spawn(
    ns,
    'unshare',
    [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount --bind '${dir}/run' /run/avahi-daemon && exec avahi-daemon -f '${dir}/avahi.conf' --no-drop-root --no-chroot --no-rlimits --no-proc-title --debug`,
    ],
    { env, label: `${ns}: avahi-daemon (${hostName})` },
  );
  const avahi = new Avahi(lab, ns, dir, hostName, dbus, daemon);
  try {
    await Promise.any([
      waitForLine(daemon, (l) => l.includes('Server startup complete'), timeoutMs, { stderr: true, what: 'avahi "Server startup complete"' }),
      waitForLine(daemon, (l) => l.includes('Server startup complete'), timeoutMs, { what: 'avahi "Server startup complete"' }),
    ]);
  } catch (err) {
    await avahi.stop();
    const first = err instanceof AggregateError ? (err.errors[0] as Error) : (err as Error);
    throw new Error(`avahi-daemon failed to start in ${ns}: ${first.message}`, { cause: err });
  }
  return avahi;
}

/** One line of `avahi-browse -p` output. */
export interface AvahiBrowseLine {
  /** `+` new, `-` removed, `=` resolved. */
  kind: '+' | '-' | '=';
  interface: string;
  protocol: 'IPv4' | 'IPv6';
  name: string;
  type: string;
  domain: string;
  host?: string;
  address?: string;
  port?: number;
  /** TXT strings as published (`key=value`), quotes removed. */
  txt?: string[];
}

/** avahi-browse -p escapes `;`, `\\` and non-printables as `\DDD` (decimal) and `\;`. */
export function unescapeAvahi(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && /^\d{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number(s.slice(i + 1, i + 4)));
      i += 3;
    } else if (c === '\\' && i + 1 < s.length) {
      bytes.push(...Buffer.from(s[i + 1] as string, 'utf8'));
      i += 1;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Splits on `;` that are not escaped. */
function splitFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === '\\' && i + 1 < line.length) {
      cur += c + (line[i + 1] as string);
      i++;
    } else if (c === ';') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Splits avahi's TXT field `"a=1" "b=2"` into strings. */
function parseTxtField(field: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(field)) !== null) out.push(unescapeAvahi(m[1] ?? ''));
  return out;
}

export function parseAvahiBrowseLine(line: string): AvahiBrowseLine | undefined {
  const f = splitFields(line);
  const kind = f[0];
  if (kind !== '+' && kind !== '-' && kind !== '=') return undefined;
  if (f.length < 6) return undefined;
  const entry: AvahiBrowseLine = {
    kind,
    interface: f[1] ?? '',
    protocol: f[2] === 'IPv6' ? 'IPv6' : 'IPv4',
    name: unescapeAvahi(f[3] ?? ''),
    type: unescapeAvahi(f[4] ?? ''),
    domain: unescapeAvahi(f[5] ?? ''),
  };
  if (kind === '=' && f.length >= 10) {
    entry.host = unescapeAvahi(f[6] ?? '');
    entry.address = f[7] ?? '';
    entry.port = Number(f[8]);
    entry.txt = parseTxtField(f.slice(9).join(';'));
  }
  return entry;
}

/** `avahi-browse -rpk type` in the daemon's namespace (see Avahi.browse). */
export function avahiBrowse(avahi: Avahi, type: string, opts: { terminate?: boolean } = {}): TrackedProcess {
  return avahi.browse(type, opts);
}

/** `avahi-publish -s name type port txt...` in the daemon's namespace (see Avahi.publish). */
export function avahiPublish(avahi: Avahi, name: string, type: string, port: number, txt: string[] = [], opts: { subtypes?: string[]; host?: string } = {}): TrackedProcess {
  return avahi.publish(name, type, port, txt, opts);
}
