/**
 * The flags every session command (chat, send, receive) shares — service, name,
 * security, interfaces — and how they become PeerSession options (../shared/CLI.md).
 */
import { readFileSync } from 'node:fs';
import { PeerlinkError } from '../errors.js';
import { selectInterfaces } from '../path/interfaces.js';
import { Endpoint, parsePsk } from '../net/index.js';
import type { PeerSession, PeerSessionOptions, SessionSecurity } from '../session/index.js';
import { UsageError } from './args.js';
import type { CliIO } from './io.js';
import { WIDE_AREA_FLAGS_HELP, wideAreaFlags, wideAreaFromFlags, type WideAreaFlagValues } from './wide-area-flags.js';

/** parseArgs definitions for the shared flags. */
export const sessionFlags = {
  service: { type: 'string' },
  name: { type: 'string' },
  psk: { type: 'string' },
  'psk-file': { type: 'string' },
  'psk-identity': { type: 'string' },
  interface: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...wideAreaFlags,
} as const;

export const SESSION_FLAGS_HELP = `  --service NAME       the session's service (bare name: NAME → _NAME._tcp); required
  --name NAME          display name (default: host name + a short random suffix)
  --psk HEX            TLS pre-shared key, hex, at least 16 bytes (visible in /proc:
                       prefer --psk-file or PEERLINK_PSK)
  --psk-file FILE      read the key (hex) from FILE (an empty key, from any
                       source, is an error: no key at all runs unencrypted)
  --psk-identity ID    the PSK identity to send / accept
  --interface IF       use only this interface (repeatable; default: every up,
                       multicast-capable, non-loopback interface; lo only when named)
${WIDE_AREA_FLAGS_HELP}
  --json               one JSON object per line on stdout (see docs/cli.md)
  --verbose            state changes and errors in detail on stderr
  -h, --help           this help
  Environment: PEERLINK_PSK (hex key), PEERLINK_TSIG, NO_COLOR (no colours)`;

export interface SessionFlagValues extends WideAreaFlagValues {
  service?: string;
  name?: string;
  psk?: string;
  'psk-file'?: string;
  'psk-identity'?: string;
  interface?: string[];
  json?: boolean;
  verbose?: boolean;
}

/**
 * The session options the flags ask for. Warns on stderr when the session will run
 * unencrypted. Throws UsageError / PeerlinkError (exit 2) for bad values.
 */
export function sessionOptionsFromFlags(values: SessionFlagValues, io: CliIO, command: string): PeerSessionOptions {
  if (!values.service) throw new UsageError(`${command} needs --service NAME (the same NAME on every peer)`);
  const service = values.service.replace(/^_/, '').replace(/\._tcp\.?$/, '');
  if (values.interface) selectInterfaces(values.interface); // unknown interface → ERR_UNKNOWN_INTERFACE (exit 2)
  const security = securityFromFlags(values, io);
  if (security.mode === 'none')
    io.stderr.write(`peerlink: warning: running unencrypted — anyone on the network can read and join this session; use --psk-file FILE or PEERLINK_PSK\n`);
  const opts: PeerSessionOptions = { serviceType: service, security };
  if (values.name !== undefined) opts.displayName = values.name;
  if (values.interface) opts.interfaces = values.interface;
  const wideArea = wideAreaFromFlags(values, io.env);
  if (wideArea) opts.wideArea = wideArea;
  return opts;
}

/**
 * The PSK (hex) from --psk, --psk-file or PEERLINK_PSK, in that order of precedence
 * (the flags are exclusive); undefined when none is given. Usable by any command.
 */
export function pskFromFlags(values: { psk?: string; 'psk-file'?: string }, env: NodeJS.ProcessEnv): string | undefined {
  if (values.psk !== undefined && values['psk-file'] !== undefined) throw new UsageError('give the key once: --psk or --psk-file');
  let hex: string | undefined = values.psk;
  if (values['psk-file'] !== undefined) {
    try {
      hex = readFileSync(values['psk-file'], 'utf8').trim();
    } catch (err) {
      throw new UsageError(`cannot read --psk-file ${values['psk-file']}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  let from = values['psk-file'] !== undefined ? `--psk-file ${values['psk-file']}` : '--psk';
  if (hex === undefined && env.PEERLINK_PSK !== undefined) {
    hex = env.PEERLINK_PSK;
    from = 'PEERLINK_PSK';
  }
  if (hex === undefined) return undefined;
  // An empty key is a mistake (an unset variable, an empty file), never a request for no
  // encryption: running unencrypted must be chosen by giving no key at all.
  if (hex.trim() === '') throw new UsageError(`the key from ${from} is empty; give a hex key of at least 16 bytes, or no key at all to run unencrypted`);
  try {
    parsePsk(hex);
  } catch (err) {
    if (err instanceof PeerlinkError) throw new UsageError(err.message);
    throw err;
  }
  return hex.trim();
}

/** parseArgs definition of `--connect HOST:PORT` (repeatable), for the commands that dial by address (send, chat). */
export const connectFlag = {
  connect: { type: 'string', multiple: true },
} as const;

export const CONNECT_FLAG_HELP = `  --connect HOST:PORT  also connect to the peer at this address (repeatable), for
                       networks where discovery does not work (VPNs, other subnets,
                       client isolation); IPv6 as [ADDR]:PORT. 'peerlink receive'
                       prints the addresses it can be reached at`;

/**
 * The endpoints of `--connect HOST:PORT` values: `10.0.0.2:4000`, `host.lan:4000`,
 * `[fd00::2]:4000`, `[fe80::1%eth0]:4000`. Anything else is a usage error (exit 2).
 */
export function connectEndpoints(values: readonly string[] | undefined): Endpoint[] {
  return (values ?? []).map((v) => {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(v) ?? /^([^:[\]\s]+):(\d+)$/.exec(v);
    if (!m) throw new UsageError(`--connect expects HOST:PORT (IPv6 as [ADDR]:PORT), got "${v}"`);
    const port = Number(m[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--connect ${v}: invalid port (1-65535)`);
    try {
      return Endpoint.hostPort(m[1] as string, port);
    } catch (err) {
      throw new UsageError(`--connect ${v}: ${(err as Error).message}`);
    }
  });
}

function securityFromFlags(values: SessionFlagValues, io: CliIO): SessionSecurity {
  const hex = pskFromFlags(values, io.env);
  if (hex === undefined) {
    if (values['psk-identity'] !== undefined) throw new UsageError('--psk-identity needs a key (--psk-file, PEERLINK_PSK or --psk)');
    return { mode: 'none' };
  }
  const sec: SessionSecurity = { mode: 'psk', key: hex };
  if (values['psk-identity'] !== undefined) sec.identity = values['psk-identity'];
  return sec;
}

/**
 * Wide-area registrations and later failures of a session command: `registered` lines with
 * the domain (JSON) or a note on stderr (text, with --verbose), warnings on stderr. A
 * refused first registration fails session.start() itself (exit 1).
 */
export function reportWideArea(session: PeerSession, io: CliIO, json: boolean, verbose: boolean): void {
  session.on('advertisedWideArea', ({ domain, name }) => {
    if (json) io.stdout.write(`${JSON.stringify({ event: 'registered', name, domain })}\n`);
    else if (verbose) io.stderr.write(`registered "${name}" in ${domain}\n`);
  });
  session.on('wideAreaError', (err) => {
    if (json) io.stdout.write(`${JSON.stringify({ event: 'wideAreaError', code: err.code, message: err.message })}\n`);
    else io.stderr.write(`peerlink: warning: ${err.message} (${err.code})\n`);
  });
}
