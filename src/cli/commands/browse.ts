/**
 * `peerlink browse <type>` — prints one line per change (added / changed / removed) of the
 * instances of a Bonjour service type; exits 0 after --timeout or on SIGINT/SIGTERM.
 */
import { Mdns, UnicastBrowser, UnicastContext, browseDomainsOf, discoverBrowseDomains, parseServer, resolveWideArea, type ServiceInstance } from '../../dnssd/index.js';
import { WIDE_AREA_FLAGS_HELP, wideAreaFlags, wideAreaFromFlags } from '../wide-area-flags.js';
import { isPeerlinkError } from '../../errors.js';
import { jsonLine, parseCommand, parseSeconds, UsageError } from '../args.js';
import { EXIT_OK, type CliIO } from '../io.js';
import { untilAborted } from './advertise.js';

export const summary = 'list Bonjour services of a type as they come and go';

const USAGE = `Usage: peerlink browse <type> [options]
       peerlink browse --domains [--domain NAME ...] [--dns-server ADDR[:PORT]]

Browses for instances of <type> (e.g. _example._tcp) and prints one line per change.
An instance is printed once it is resolved (host, port, addresses, TXT), once per
interface it is found on.

Options:
  --interface IF     use only this interface (repeatable; default: every up,
                     multicast-capable, non-loopback interface; lo only when named)
  --subtype SUB      only instances registered with this subtype
  --timeout SECONDS  stop after this long (exit 0)
${WIDE_AREA_FLAGS_HELP}
                     (instances found in a unicast domain have "domain" set to it
                     and an empty "interface")
  --domains          list the browse domains (RFC 6763 §11: b._dns-sd._udp and
                     lb._dns-sd._udp PTRs) under the search domains of
                     /etc/resolv.conf and each --domain, then exit
  --json             one JSON object per line:
                     {"event":"added"|"changed","name","type","domain","host","port",
                      "addresses":[...],"txt":{...},"interface"}  (+ "binaryTxt" when a value
                     is not UTF-8: it is then base64) and {"event":"removed","name","type",
                     "domain","interface"}
  --verbose          log to stderr
  -h, --help         this help
`;

export function instanceJson(event: 'added' | 'changed' | 'removed', s: ServiceInstance): Record<string, unknown> {
  if (event === 'removed') return { event, name: s.name, type: s.type, domain: s.domain, interface: s.interface };
  const out: Record<string, unknown> = {
    event,
    name: s.name,
    type: s.type,
    domain: s.domain,
    host: s.host,
    port: s.port,
    addresses: s.addresses,
    txt: s.txt,
    interface: s.interface,
  };
  if (s.binaryTxt.length > 0) out.binaryTxt = s.binaryTxt;
  return out;
}

export function instanceText(event: 'added' | 'changed' | 'removed', s: ServiceInstance): string {
  const head = `${event.padEnd(7)} ${s.name} ${s.type}.${s.domain} on ${s.interface}`;
  if (event === 'removed') return head;
  const txt = Object.entries(s.txt).map(([k, v]) => (v === null ? k : `${k}=${v}`));
  return `${head}: ${s.host}:${s.port} [${s.addresses.join(', ')}]${txt.length ? ` txt: ${txt.join(' ')}` : ''}`;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(argv, io, USAGE, {
    interface: { type: 'string', multiple: true },
    subtype: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
    domains: { type: 'boolean' },
    ...wideAreaFlags,
  });
  if (!parsed) return EXIT_OK;
  const { values, positionals } = parsed;
  if (values.domains) return listDomains(values, io);
  if (positionals.length !== 1) throw new UsageError('browse needs exactly one <type>, e.g. _example._tcp');
  const type = positionals[0] as string;
  const timeout = parseSeconds('--timeout', values.timeout);
  const json = values.json === true;
  const wideArea = resolveWideArea(wideAreaFromFlags(values, io.env));

  const mdns = new Mdns(values.interface ? { interfaces: values.interface } : {});
  // waiting for an interface is worth saying even without --verbose (stderr only)
  mdns.on('warning', (err) => {
    if (values.verbose || isPeerlinkError(err, 'ERR_NO_USABLE_INTERFACE')) io.stderr.write(`peerlink: warning: ${err.message}\n`);
  });
  try {
    const browser = mdns.browse({ type, ...(values.subtype ? { subtype: values.subtype } : {}) });
    const print = (event: 'added' | 'changed' | 'removed') => (s: ServiceInstance): void => {
      if (json) jsonLine(io, instanceJson(event, s));
      else io.stdout.write(`${instanceText(event, s)}\n`);
    };
    browser.on('added', print('added'));
    browser.on('changed', print('changed'));
    browser.on('removed', print('removed'));
    const unicast: UnicastBrowser[] = [];
    if (wideArea) {
      void browseDomainsOf(wideArea).then((domains) => {
        if (io.signal.aborted) return;
        for (const domain of domains) {
          const u = new UnicastBrowser(wideArea.ctx, { type, domain, ...(wideArea.maxBrowseInterval !== undefined ? { maxInterval: wideArea.maxBrowseInterval } : {}) });
          unicast.push(u);
          u.on('added', print('added'));
          u.on('changed', print('changed'));
          u.on('removed', print('removed'));
          u.on('error', (err) => {
            if (values.verbose) io.stderr.write(`peerlink: warning: ${u.domain}: ${err.message}\n`);
          });
          u.start();
        }
      });
    }
    await untilAborted(io.signal, timeout === undefined ? undefined : timeout * 1000);
    browser.stop();
    for (const u of unicast) u.stop();
    if (values.verbose && mdns.stats) io.stderr.write(`mdns stats: ${JSON.stringify(mdns.stats)}\n`);
  } finally {
    await mdns.close();
  }
  return EXIT_OK;
}

async function listDomains(values: { domain?: string[]; 'dns-server'?: string; json?: boolean }, io: CliIO): Promise<number> {
  const ctx = new UnicastContext(values['dns-server'] ? { dnsServer: parseServer(values['dns-server']) } : {});
  const under = [...ctx.resolv.search, ...(values.domain ?? [])];
  const found = await discoverBrowseDomains(ctx, under);
  for (const d of found) {
    if (values.json) jsonLine(io, { event: 'domain', domain: d.domain, kind: d.kind, from: d.from });
    else io.stdout.write(`${d.domain} (${d.kind === 'b' ? 'browse' : 'default browse'}, listed under ${d.from})\n`);
  }
  if (found.length === 0 && !values.json) io.stderr.write(`peerlink: no browse domain listed under ${under.length > 0 ? under.join(', ') : '(no search domain in /etc/resolv.conf; give --domain)'}\n`);
  return EXIT_OK;
}
