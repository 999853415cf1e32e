/**
 * `peerlink interfaces` — the host's network interfaces with type, state, flags and
 * addresses, marking the ones discovery uses by default; `--watch` keeps printing changes
 * (PathMonitor) until SIGINT/SIGTERM.
 */
import { listInterfaces, selectInterfaces, type NetworkInterface } from '../../path/interfaces.js';
import { isExpensiveInterface } from '../../path/constraints.js';
import { PathMonitor, type InterfaceChange, type Path } from '../../path/monitor.js';
import { jsonLine, parseCommand, UsageError } from '../args.js';
import { EXIT_OK, type CliIO } from '../io.js';

export const summary = 'list network interfaces (type, state, addresses); --watch for changes';

const USAGE = `Usage: peerlink interfaces [options]

Lists every network interface of this host (network namespace): name, index, type
(wifi, wiredEthernet, cellular, loopback, other), state, flags, MTU and addresses.
Interfaces marked * are the ones discovery and connections use by default (up,
multicast-capable, non-loopback).

Options:
  --json      one JSON object per interface per line (shape in docs/cli.md)
  --watch     keep running and print each change (interface added, removed, up,
              down, addresses changed) and the resulting path, until SIGINT/SIGTERM
  -h, --help  this help
`;

export function interfaceJson(i: NetworkInterface, defaults: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: i.name,
    index: i.index,
    type: i.type,
    up: i.flags.up,
    running: i.flags.running,
    multicast: i.flags.multicast,
    broadcast: i.flags.broadcast,
    loopback: i.flags.loopback,
    pointToPoint: i.flags.pointToPoint,
    mtu: i.mtu,
    default: defaults.has(i.name),
    expensive: isExpensiveInterface(i),
    addresses: i.addresses.map((a) => ({
      family: a.family,
      address: a.address,
      prefixLength: a.prefixLength,
      scope: a.scope,
      ...(a.scopeId !== undefined ? { scopeId: a.scopeId } : {}),
    })),
  };
  if (i.mac !== undefined) out.mac = i.mac;
  return out;
}

function flagList(i: NetworkInterface): string {
  const f: string[] = [];
  if (i.flags.up) f.push('UP');
  if (i.flags.running) f.push('RUNNING');
  if (i.flags.broadcast) f.push('BROADCAST');
  if (i.flags.multicast) f.push('MULTICAST');
  if (i.flags.loopback) f.push('LOOPBACK');
  if (i.flags.pointToPoint) f.push('POINTOPOINT');
  return f.join(',') || '-';
}

function state(i: NetworkInterface): string {
  if (!i.flags.up) return 'down';
  return i.flags.running ? 'up' : 'no-carrier';
}

export function interfaceTable(all: readonly NetworkInterface[], defaults: ReadonlySet<string>): string {
  const rows = all.map((i) => [
    `${defaults.has(i.name) ? '*' : ' '}${i.name}`,
    String(i.index),
    i.type,
    state(i),
    flagList(i),
    String(i.mtu),
    i.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(' ') || '-',
  ]);
  const head = [' NAME', 'INDEX', 'TYPE', 'STATE', 'FLAGS', 'MTU', 'ADDRESSES'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const fmt = (r: string[]): string =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n') + '\n';
}

function changeText(c: InterfaceChange): string {
  const i = c.interface;
  switch (c.kind) {
    case 'added':
      return `added     ${i.name} (${i.type}, ${state(i)})`;
    case 'removed':
      return `removed   ${i.name}`;
    case 'up':
    case 'down':
      return `${c.kind.padEnd(9)} ${i.name}`;
    case 'addresses': {
      const add = (c.addedAddresses ?? []).map((a) => `+${a.address}/${a.prefixLength}`);
      const rm = (c.removedAddresses ?? []).map((a) => `-${a.address}/${a.prefixLength}`);
      return `addresses ${i.name} ${[...add, ...rm].join(' ')}`;
    }
    case 'changed':
      return `changed   ${i.name} (mtu ${i.mtu}, ${flagList(i)})`;
  }
}

function pathText(p: Path): string {
  const names = p.availableInterfaces.map((i) => i.name).join(', ') || 'none';
  return `path      ${p.status}: ${names}${p.isExpensive ? ' (expensive)' : ''}${p.unsatisfiedReason ? ` — ${p.unsatisfiedReason}` : ''}`;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(argv, io, USAGE, {
    json: { type: 'boolean' },
    watch: { type: 'boolean' },
  });
  if (!parsed) return EXIT_OK;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`interfaces takes no arguments (got "${positionals.join(' ')}")`);

  const all = listInterfaces();
  const defaults = new Set(selectInterfaces(undefined, all).map((i) => i.name));
  if (values.json) for (const i of all) jsonLine(io, interfaceJson(i, defaults));
  else io.stdout.write(interfaceTable(all, defaults));
  if (!values.watch) return EXIT_OK;

  const monitor = new PathMonitor();
  const currentDefaults = (): Set<string> => new Set(selectInterfaces(undefined, [...monitor.allInterfaces]).map((i) => i.name));
  monitor.on('change', (c) => {
    if (values.json) jsonLine(io, { event: 'change', kind: c.kind, interface: interfaceJson(c.interface, currentDefaults()) });
    else io.stdout.write(`${changeText(c)}\n`);
  });
  monitor.on('path', (p) => {
    if (values.json) jsonLine(io, { event: 'path', status: p.status, interfaces: p.availableInterfaces.map((i) => i.name), isExpensive: p.isExpensive, isConstrained: p.isConstrained });
    else io.stdout.write(`${pathText(p)}\n`);
  });
  monitor.on('fallback', (reason) => {
    if (values.verbose) io.stderr.write(`peerlink: interface change notifications unavailable (${reason}); polling every 2 s\n`);
  });
  await monitor.start();
  if (values.verbose) io.stderr.write(`peerlink: watching interfaces (${monitor.detectionMode ?? 'poll'})\n`);
  if (!io.signal.aborted) {
    // The monitor is unref'd by design; this timer keeps the command running until a signal.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await new Promise<void>((resolve) => io.signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(keepAlive);
  }
  await monitor.cancel();
  return EXIT_OK;
}
