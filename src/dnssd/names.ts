/**
 * Validation and assembly of DNS-SD names: service types (RFC 6335 §5.1, RFC 6763 §7),
 * subtypes, instance names (RFC 6763 §4.1.1) and host names, and the fully qualified
 * names built from them.
 */
import { hostname } from 'node:os';
import { PeerlinkError } from '../errors.js';
import { escapeLabel, joinLabels, splitName } from './codec/name.js';

export const DEFAULT_DOMAIN = 'local';

export interface ServiceType {
  /** `_http` */
  name: string;
  /** `_tcp` or `_udp` */
  protocol: '_tcp' | '_udp';
}

const SERVICE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9]))*$/;

/** Parses `_name._tcp` / `_name._udp` (a trailing `.local` or `.` is accepted). */
export function parseServiceType(type: string): ServiceType {
  const bad = (why: string): PeerlinkError =>
    new PeerlinkError('ERR_INVALID_SERVICE_TYPE', `invalid service type "${type}": ${why} (expected e.g. "_example._tcp")`);
  if (typeof type !== 'string') throw bad('not a string');
  let t = type.replace(/\.$/, '');
  if (/\.local$/i.test(t)) t = t.slice(0, -6);
  const parts = t.split('.');
  if (parts.length !== 2) throw bad('must be two labels');
  const [svc, proto] = parts as [string, string];
  const p = proto.toLowerCase();
  if (p !== '_tcp' && p !== '_udp') throw bad('the protocol must be _tcp or _udp');
  if (!svc.startsWith('_')) throw bad('the service name must start with "_"');
  const name = svc.slice(1);
  if (name.length < 1 || name.length > 15) throw bad('the service name must be 1-15 characters');
  if (!SERVICE_NAME.test(name)) throw bad('the service name may hold letters, digits and single inner hyphens');
  if (!/[A-Za-z]/.test(name)) throw bad('the service name must contain a letter');
  return { name: svc, protocol: p };
}

export function formatServiceType(t: ServiceType): string {
  return `${t.name}.${t.protocol}`;
}

/** Checks a subtype label (`_printer` or `printer`); returns it with a leading underscore. */
export function normalizeSubtype(sub: string): string {
  const s = sub.startsWith('_') ? sub : `_${sub}`;
  const bytes = Buffer.byteLength(s, 'utf8');
  if (bytes < 2 || bytes > 63 || hasControlChars(s)) {
    throw new PeerlinkError('ERR_INVALID_SERVICE_TYPE', `invalid subtype "${sub}": 1-62 bytes after "_", no control characters`);
  }
  return s;
}

export function validateInstanceName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) throw new PeerlinkError('ERR_INVALID_INSTANCE_NAME', 'the instance name must not be empty');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > 63) throw new PeerlinkError('ERR_INVALID_INSTANCE_NAME', `instance name "${name}" is ${bytes} bytes of UTF-8; at most 63 are allowed`);
  if (hasControlChars(name)) throw new PeerlinkError('ERR_INVALID_INSTANCE_NAME', `instance name "${name}" contains control characters`);
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(name)) throw new PeerlinkError('ERR_INVALID_INSTANCE_NAME', `instance name contains an unpaired surrogate`);
}

const HOST_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Accepts `name` or `name.local`; returns the bare label. */
export function parseHostName(host: string): string {
  const label = host.replace(/\.$/, '').replace(/\.local$/i, '');
  if (!HOST_LABEL.test(label)) {
    throw new PeerlinkError('ERR_INVALID_HOST_NAME', `invalid host name "${host}": one label of letters, digits and hyphens, 1-63 characters`);
  }
  return label;
}

/** This machine's host name turned into a valid single label (`My_Box.lan` -> `My-Box`). */
export function defaultHostLabel(): string {
  const first = (hostname().split('.')[0] ?? '').replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return first || 'peerlink';
}

/** `_http._tcp.local` */
export function serviceTypeFqdn(type: ServiceType, domain = DEFAULT_DOMAIN): string {
  return `${formatServiceType(type)}.${domain}`;
}

/** `Living Room._http._tcp.local` (the instance label escaped). */
export function instanceFqdn(instance: string, type: ServiceType, domain = DEFAULT_DOMAIN): string {
  return `${escapeLabel(instance)}.${serviceTypeFqdn(type, domain)}`;
}

export function subtypeFqdn(subtype: string, type: ServiceType, domain = DEFAULT_DOMAIN): string {
  return `${escapeLabel(subtype)}._sub.${serviceTypeFqdn(type, domain)}`;
}

export const SERVICES_ENUMERATION = '_services._dns-sd._udp.local';

/** Splits `Instance._type._proto.domain` into its bare instance label and the rest. */
export function splitInstanceFqdn(fqdn: string): { instance: string; type: string; domain: string } | undefined {
  const labels = splitName(fqdn);
  if (labels.length < 4) return undefined;
  const [instance, svc, proto, ...domain] = labels as [string, string, string, ...string[]];
  if (!svc.startsWith('_') || (proto.toLowerCase() !== '_tcp' && proto.toLowerCase() !== '_udp')) return undefined;
  return { instance, type: `${svc}.${proto}`, domain: joinLabels(domain) };
}

/** Next name after a conflict: `Name` -> `Name (2)` -> `Name (3)` (Apple's form). */
export function nextInstanceName(name: string, step = 1): string {
  const m = /^(.*) \((\d+)\)$/.exec(name);
  const base = m ? (m[1] as string) : name;
  const n = m ? Number(m[2]) + step : 2;
  const suffix = ` (${n})`;
  return truncateUtf8(base, 63 - Buffer.byteLength(suffix)) + suffix;
}

/** Next host label after a conflict: `vm` -> `vm-2` -> `vm-3`. */
export function nextHostLabel(label: string): string {
  const m = /^(.*)-(\d+)$/.exec(label);
  const base = m ? (m[1] as string) : label;
  const n = m ? Number(m[2]) + 1 : 2;
  const suffix = `-${n}`;
  return base.slice(0, 63 - suffix.length) + suffix;
}

function truncateUtf8(s: string, maxBytes: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return out;
}

function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
