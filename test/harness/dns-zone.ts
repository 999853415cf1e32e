/**
 * A DNS zone for wide-area DNS-SD, as docs/wide-area.md describes it: the zone file (SOA,
 * NS, the b/lb browse-domain PTRs), the TSIG key and the server configuration for BIND 9
 * and for Knot. The tests start servers from exactly these files, and a unit test checks
 * that docs/wide-area.md shows the same text, so the documented setup is the tested one.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ZoneSpec {
  /** `example.test` (no trailing dot). */
  zone: string;
  keyName: string;
  /** Base64 HMAC-SHA256 secret (tsig-keygen's). */
  secret: string;
  /** The address the server listens on, and the zone's NS record points at. */
  address: string;
  port: number;
  /** Working directory of the server (zone file, journal). */
  dir: string;
}

/** `tsig-keygen -a hmac-sha256 NAME` → BIND key file text. */
export function tsigKeygen(keyName: string): string {
  return execFileSync('tsig-keygen', ['-a', 'hmac-sha256', keyName], { encoding: 'utf8' });
}

export function secretOf(keyFile: string): string {
  const m = /secret\s+"([^"]+)"/.exec(keyFile);
  if (!m?.[1]) throw new Error('no secret in key file');
  return m[1];
}

/** The zone file both servers load. */
export function zoneFile(s: ZoneSpec): string {
  return `$ORIGIN ${s.zone}.
$TTL 60
@                SOA   ns1 hostmaster 1 3600 600 86400 60
@                NS    ns1
ns1              A     ${s.address}
; browse domains (RFC 6763 §11): Apple clients and peerlink find the zone from here
b._dns-sd._udp   PTR   @
lb._dns-sd._udp  PTR   @
`;
}

/** BIND 9 named.conf (9.18). */
export function bindConf(s: ZoneSpec): string {
  return `options {
    directory "${s.dir}";
    pid-file "${s.dir}/named.pid";
    listen-on port ${s.port} { ${s.address}; };
    listen-on-v6 { none; };
    recursion no;
    allow-query { any; };
    // authoritative only: no trust-anchor refresh (it would ask the root servers), no NOTIFY
    dnssec-validation no;
    notify no;
};

controls { };

include "${s.dir}/${s.keyName}.key";

zone "${s.zone}" {
    type primary;
    file "${s.dir}/${s.zone}.zone";
    update-policy { grant ${s.keyName} subdomain ${s.zone}. ANY; };
};
`;
}

/** Knot 3.2 knot.conf. */
export function knotConf(s: ZoneSpec): string {
  return `server:
    rundir: "${s.dir}"
    listen: ${s.address}@${s.port}

database:
    storage: "${s.dir}"

key:
  - id: ${s.keyName}
    algorithm: hmac-sha256
    secret: ${s.secret}

acl:
  - id: peerlink-update
    key: ${s.keyName}
    action: update

zone:
  - domain: ${s.zone}
    storage: "${s.dir}"
    file: "${s.zone}.zone"
    acl: peerlink-update
`;
}

export type ServerKind = 'bind' | 'knot';

/** Writes the zone, the key and the server's configuration into `s.dir`; returns the config path. */
export function writeZone(kind: ServerKind, s: ZoneSpec, keyFile: string): string {
  mkdirSync(s.dir, { recursive: true });
  writeFileSync(join(s.dir, `${s.keyName}.key`), keyFile, { mode: 0o600 });
  writeFileSync(join(s.dir, `${s.zone}.zone`), zoneFile(s));
  const conf = join(s.dir, kind === 'bind' ? 'named.conf' : 'knot.conf');
  writeFileSync(conf, kind === 'bind' ? bindConf(s) : knotConf(s), { mode: 0o600 });
  return conf;
}
