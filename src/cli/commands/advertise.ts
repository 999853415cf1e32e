/**
 * `peerlink advertise <name> <type> <port> [key=value ...]` — publishes a Bonjour service
 * until SIGINT/SIGTERM, then sends goodbyes and exits 0.
 */
import { Mdns, UnicastAdvertisement, resolveWideArea } from '../../dnssd/index.js';
import type { TxtInput } from '../../dnssd/index.js';
import { WIDE_AREA_FLAGS_HELP, wideAreaFlags, wideAreaFromFlags } from '../wide-area-flags.js';
import { isPeerlinkError } from '../../errors.js';
import { jsonLine, parseCommand, parsePort, UsageError } from '../args.js';
import { EXIT_FAILED, EXIT_OK, type CliIO } from '../io.js';

export const summary = 'publish a Bonjour service until stopped';

const USAGE = `Usage: peerlink advertise <name> <type> <port> [key=value ...] [options]

Publishes <name> (an instance name, up to 63 bytes of UTF-8) of <type> (e.g. _example._tcp)
at <port>, with TXT entries key=value (or a bare key for a boolean attribute), until
SIGINT/SIGTERM; then sends goodbye packets and exits 0.

Options:
  --interface IF   use only this interface (repeatable; default: every up, multicast-capable,
                   non-loopback interface; lo only when named)
  --subtype SUB    also register under subtype SUB (repeatable)
  --host NAME      host name to publish (default: this machine's host name)
${WIDE_AREA_FLAGS_HELP}
  --json           one JSON object per line: {"event":"registered","name",...} (with
                   "domain" for a unicast domain), {"event":"renamed","from","name"}
  --verbose        log to stderr
  -h, --help       this help
`;

/** Parses `key=value` / `key` arguments into TXT data (first occurrence of a key wins is the reader's rule; we refuse duplicates). */
export function parseTxtArgs(args: readonly string[]): TxtInput {
  const txt: TxtInput = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`TXT entry "${a}" has no key`);
    if (eq < 0) txt[a] = true;
    else txt[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return txt;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(argv, io, USAGE, {
    interface: { type: 'string', multiple: true },
    subtype: { type: 'string', multiple: true },
    host: { type: 'string' },
    json: { type: 'boolean' },
    ...wideAreaFlags,
  });
  if (!parsed) return EXIT_OK;
  const { values, positionals } = parsed;
  if (positionals.length < 3) throw new UsageError('advertise needs <name> <type> <port>');
  const [name, type, portText, ...txtArgs] = positionals as [string, string, string, ...string[]];
  const port = parsePort(portText);
  const txt = parseTxtArgs(txtArgs);
  const json = values.json === true;
  const verbose = values.verbose === true;
  const wideArea = resolveWideArea(wideAreaFromFlags(values, io.env));

  const mdns = new Mdns({ ...(values.interface ? { interfaces: values.interface } : {}), ...(values.host ? { host: values.host } : {}) });
  // waiting for an interface is worth saying even without --verbose (stderr only)
  mdns.on('warning', (err) => {
    if (verbose || isPeerlinkError(err, 'ERR_NO_USABLE_INTERFACE')) io.stderr.write(`peerlink: warning: ${err.message}\n`);
  });
  if (verbose) {
    mdns.on('hostRenamed', ({ from, name: to }) => io.stderr.write(`host name ${from} taken, now ${to}\n`));
  }
  let failed = false;
  try {
    const ad = mdns.advertise({ name, type, port, txt, ...(values.subtype ? { subtypes: values.subtype } : {}) });
    ad.on('registered', (final) => {
      if (json) jsonLine(io, { event: 'registered', name: final, type: ad.type, port: ad.port });
      else io.stdout.write(`registered ${final}\n`);
      if (verbose) io.stderr.write(`registered ${final}.${ad.type}.local on ${mdns.hostname}:${port}\n`);
    });
    ad.on('renamed', ({ from, name: to }) => {
      if (json) jsonLine(io, { event: 'renamed', from, name: to });
      else io.stdout.write(`renamed ${from} -> ${to}\n`);
    });
    ad.on('error', (err) => {
      failed = true;
      if (json) jsonLine(io, { event: 'error', code: isPeerlinkError(err) ? err.code : 'ERR_INTERNAL', message: err.message });
      else io.stderr.write(`peerlink: ${err.message}\n`);
    });
    // wide area: each domain's registration must be accepted, or the command fails (exit 1)
    const unicast = wideArea
      ? wideArea.domains.map((domain) => new UnicastAdvertisement(wideArea.ctx, { name, type, port, txt, domain, ...(wideArea.lease !== undefined ? { lease: wideArea.lease } : {}), ...(wideArea.addresses ? { addresses: wideArea.addresses } : {}) }))
      : [];
    for (const u of unicast) {
      u.on('renamed', ({ from, name: to }) => {
        if (json) jsonLine(io, { event: 'renamed', from, name: to, domain: u.domain });
        else io.stdout.write(`renamed ${from} -> ${to} in ${u.domain}\n`);
      });
      u.on('error', (err) => io.stderr.write(`peerlink: warning: ${u.domain}: ${err.message}\n`));
    }
    try {
      for (const u of unicast) {
        const final = await u.start();
        if (json) jsonLine(io, { event: 'registered', name: final, type: u.type, port, domain: u.domain });
        else io.stdout.write(`registered ${final} in ${u.domain}\n`);
      }
    } catch (err) {
      await Promise.allSettled([ad.stop(), ...unicast.map((u) => u.stop())]);
      throw err;
    }
    await untilAborted(io.signal);
    await Promise.allSettled(unicast.map((u) => u.stop()));
    await ad.stop();
    if (verbose && mdns.stats) io.stderr.write(`mdns stats: ${JSON.stringify(mdns.stats)}\n`);
  } finally {
    await mdns.close();
  }
  return failed ? EXIT_FAILED : EXIT_OK;
}

export function untilAborted(signal: AbortSignal, timeoutMs?: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    // the command runs until stopped even when no socket is open yet (waiting for an interface)
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const done = (): void => {
      clearInterval(keepAlive);
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
  });
}
