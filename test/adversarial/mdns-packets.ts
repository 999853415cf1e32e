/**
 * Hand-built mDNS responses for adversarial tests (RFC 1035 §4.1 layout, no name compression),
 * written here and not with src/dnssd's codec, so a bug shared by both cannot hide an attack.
 */

export interface RR {
  name: string;
  type: 'PTR' | 'SRV' | 'TXT' | 'A';
  ttl: number;
  /** PTR: target name; SRV: `port target`; TXT: strings joined by ','; A: dotted quad. */
  data: string;
  cacheFlush?: boolean;
}

const TYPE = { A: 1, PTR: 12, TXT: 16, SRV: 33 } as const;

function name(n: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of n.replace(/\.$/, '').split('.')) {
    const b = Buffer.from(label, 'utf8');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function rdata(r: RR): Buffer {
  switch (r.type) {
    case 'PTR':
      return name(r.data);
    case 'A':
      return Buffer.from(r.data.split('.').map(Number));
    case 'SRV': {
      const [port, target] = r.data.split(' ');
      const h = Buffer.alloc(6);
      h.writeUInt16BE(0, 0);
      h.writeUInt16BE(0, 2);
      h.writeUInt16BE(Number(port), 4);
      return Buffer.concat([h, name(target ?? '')]);
    }
    case 'TXT': {
      const strings = r.data === '' ? [''] : r.data.split(',');
      return Buffer.concat(strings.flatMap((s) => {
        const b = Buffer.from(s, 'utf8');
        return [Buffer.from([b.length]), b];
      }));
    }
  }
}

function record(r: RR): Buffer {
  const d = rdata(r);
  const h = Buffer.alloc(10);
  h.writeUInt16BE(TYPE[r.type], 0);
  h.writeUInt16BE((r.cacheFlush ? 0x8000 : 0) | 1, 2);
  h.writeUInt32BE(r.ttl >>> 0, 4);
  h.writeUInt16BE(d.length, 8);
  return Buffer.concat([name(r.name), h, d]);
}

/** A response (QR + AA) carrying `answers`. */
export function response(answers: readonly RR[]): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0, 0);
  h.writeUInt16BE(0x8400, 2);
  h.writeUInt16BE(answers.length, 6);
  return Buffer.concat([h, ...answers.map(record)]);
}

/** PTR + SRV + TXT for one instance of `type` (`_adversary._tcp.local`) on `host` at `port`. */
export function instance(inst: string, type: string, host: string, port: number, ttl = 4500): RR[] {
  const fqdn = `${inst}.${type}`;
  return [
    { name: type, type: 'PTR', ttl, data: fqdn },
    { name: fqdn, type: 'SRV', ttl, data: `${port} ${host}`, cacheFlush: true },
    { name: fqdn, type: 'TXT', ttl, data: '', cacheFlush: true },
  ];
}

/** A goodbye (TTL 0) for a PTR record. */
export function goodbyePtr(owner: string, target: string): RR {
  return { name: owner, type: 'PTR', ttl: 0, data: target };
}
