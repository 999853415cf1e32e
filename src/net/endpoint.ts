/**
 * Endpoints: where a connection goes. Network framework's NWEndpoint .hostPort and .service.
 *
 * `Endpoint` is both a type (the union) and a value holding the factories, so callers write
 * `Endpoint.hostPort('127.0.0.1', 4000)` and annotate with `Endpoint`.
 */
import { isIP } from 'node:net';
import { PeerlinkError } from '../errors.js';

export interface HostPortEndpoint {
  readonly kind: 'hostPort';
  /** A host name or an IP literal. IPv6 literals are written without brackets. */
  readonly host: string;
  readonly port: number;
  /**
   * The interface (name) for an IPv6 link-local address, taken from `fe80::1%eth0` or given
   * explicitly. Ignored for other addresses.
   */
  readonly interface?: string;
}

export interface ServiceEndpoint {
  readonly kind: 'service';
  /** Instance name, e.g. `Living Room`. */
  readonly name: string;
  /** Service type, e.g. `_example._tcp`. */
  readonly type: string;
  /** Domain, `local.` by default. */
  readonly domain: string;
  /** Restrict resolution and connection to this interface (name). */
  readonly interface?: string;
}

export type Endpoint = HostPortEndpoint | ServiceEndpoint;

function hostPort(host: string, port: number, options: { interface?: string } = {}): HostPortEndpoint {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `invalid port ${String(port)} (expected 0-65535)`);
  }
  let h = host.trim();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === '') throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'empty host name');
  let iface = options.interface;
  const pct = h.indexOf('%');
  if (pct >= 0 && isIP(h.slice(0, pct)) === 6) {
    iface ??= h.slice(pct + 1);
    h = h.slice(0, pct);
  }
  return iface !== undefined ? { kind: 'hostPort', host: h, port, interface: iface } : { kind: 'hostPort', host: h, port };
}

function service(name: string, type: string, domain = 'local.', iface?: string): ServiceEndpoint {
  if (name === '') throw new PeerlinkError('ERR_INVALID_INSTANCE_NAME', 'empty service instance name');
  if (!/^_[A-Za-z0-9-]{1,15}\._(tcp|udp)\.?$/.test(type)) {
    throw new PeerlinkError('ERR_INVALID_SERVICE_TYPE', `invalid service type "${type}" (expected e.g. _example._tcp)`);
  }
  const t = type.endsWith('.') ? type.slice(0, -1) : type;
  const d = domain.endsWith('.') ? domain : `${domain}.`;
  return iface !== undefined ? { kind: 'service', name, type: t, domain: d, interface: iface } : { kind: 'service', name, type: t, domain: d };
}

/** Text form for logs and reports: `127.0.0.1:80`, `[fe80::1%eth0]:80`, `Name._type._tcp.local.` */
function format(e: Endpoint): string {
  if (e.kind === 'service') return `${e.name}.${e.type}.${e.domain}${e.interface ? ` on ${e.interface}` : ''}`;
  if (isIP(e.host) === 6) return `[${e.host}${e.interface ? `%${e.interface}` : ''}]:${e.port}`;
  return `${e.host}:${e.port}`;
}

export const Endpoint = { hostPort, service, format } as const;
