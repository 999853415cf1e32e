/**
 * The flags every session command (chat, send, receive) shares — service, name,
 * security, interfaces — and how they become PeerSession options (../shared/CLI.md).
 */
import { readFileSync } from 'node:fs';
import { PeerlinkError } from '../errors.js';
import { selectInterfaces } from '../path/interfaces.js';
import { Endpoint, parsePsk } from '../net/index.js';
import { PeerSession, defaultIdentityBase, profileDir, profileHolder, type PeerSessionOptions, type SessionSecurity } from '../session/index.js';
import { isPeerlinkError } from '../errors.js';
import { MAX_PROFILES } from '../session/trust/profile.js';
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
  pki: { type: 'boolean' },
  identity: { type: 'string' },
  'trust-new': { type: 'boolean' },
  insecure: { type: 'boolean' },
  interface: { type: 'string', multiple: true },
  private: { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...wideAreaFlags,
} as const;

export const SESSION_FLAGS_HELP = `  --service NAME       the session's service (bare name: NAME → _NAME._tcp); required
  --name NAME          display name (default: host name + a short random suffix)
  --psk HEX            TLS pre-shared key instead of --pki, hex, at least 16 bytes
                       (visible in /proc: prefer --psk-file or PEERLINK_PSK)
  --psk-file FILE      read the key (hex) from FILE (an empty key, from any
                       source, is an error, never a switch to no encryption)
  --psk-identity ID    the PSK identity to send / accept
  --pki                the default: this peer's own key (kept in a profile), a code
                       compared on first contact, known peers remembered (see
                       docs/security.md "Trust"); a key (above) or --insecure
                       chooses otherwise
  --identity DIR       --pki: keep the identity and known peers in DIR (default: the
                       first profile no other peerlink process uses, under
                       $XDG_CONFIG_HOME/peerlink or ~/.config/peerlink)
  --trust-new          --pki: accept new peers' keys without comparing codes (scripts)
  --insecure           run unencrypted: the only way to (says so on stderr)
  --interface IF       use only this interface (repeatable; default: every up,
                       multicast-capable, non-loopback interface; lo only when named)
${WIDE_AREA_FLAGS_HELP}
  --private            privacy mode: random advertised and host names each run,
                       no id in the advertisement, a new id each run (--name is
                       then shown only to peers that connect)
  --json               one JSON object per line on stdout (see docs/cli.md)
  --verbose            state changes and errors in detail on stderr
  -h, --help           this help
  Environment: PEERLINK_PSK (hex key), PEERLINK_TSIG, XDG_CONFIG_HOME (where profiles are kept),
  NO_COLOR (no colours)`;

export interface SessionFlagValues extends WideAreaFlagValues {
  service?: string;
  name?: string;
  psk?: string;
  'psk-file'?: string;
  'psk-identity'?: string;
  pki?: boolean;
  identity?: string;
  'trust-new'?: boolean;
  insecure?: boolean;
  interface?: string[];
  private?: boolean;
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
    io.stderr.write(`peerlink: warning: running unencrypted (--insecure) — anyone on the network can read and join this session; leave out --insecure to use keys (--pki, the default), or give a shared key (--psk-file FILE / PEERLINK_PSK)\n`);
  const opts: PeerSessionOptions = { serviceType: service, security };
  if (values.name !== undefined) opts.displayName = values.name;
  if (values.interface) opts.interfaces = values.interface;
  const wideArea = wideAreaFromFlags(values, io.env);
  if (wideArea) opts.wideArea = wideArea;
  if (values.private === true) {
    opts.privacy = true;
    if (security.mode === 'pki') {
      // A stable key is a tracking handle: --private uses a new key each run (every contact is a first contact).
      if (values.identity !== undefined) throw new UsageError('--private uses a new key each run: give it without --identity');
      delete security.identityDir;
    }
    if (security.mode === 'none') io.stderr.write(`peerlink: warning: --private hides names in the advertisement, but without a key the display name and id still cross the network in clear text\n`);
  }
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

/**
 * --pki is the default (docs/security.md "Trust"); a key (--psk, --psk-file, PEERLINK_PSK)
 * chooses PSK; --insecure is the only way to run without encryption.
 */
function securityFromFlags(values: SessionFlagValues, io: CliIO): SessionSecurity {
  const hex = pskFromFlags(values, io.env);
  const pki = values.pki === true;
  const insecure = values.insecure === true;
  if (insecure && (pki || hex !== undefined)) throw new UsageError('--insecure runs without encryption: give it alone, without --pki or a key');
  if (pki && hex !== undefined) throw new UsageError('give one kind of security: --pki (the default) or a key (--psk-file, PEERLINK_PSK, --psk)');
  if (values['psk-identity'] !== undefined && hex === undefined) throw new UsageError('--psk-identity needs a key (--psk-file, PEERLINK_PSK or --psk)');
  if ((hex !== undefined || insecure) && (values.identity !== undefined || values['trust-new'] === true)) {
    throw new UsageError(`${values.identity !== undefined ? '--identity' : '--trust-new'} applies to --pki sessions (the default), not with ${insecure ? '--insecure' : 'a key'}`);
  }
  if (insecure) return { mode: 'none' };
  if (hex !== undefined) {
    const sec: SessionSecurity = { mode: 'psk', key: hex };
    if (values['psk-identity'] !== undefined) sec.identity = values['psk-identity'];
    return sec;
  }
  const sec: SessionSecurity = { mode: 'pki', identityDir: values.identity ?? freeProfile(io.env) };
  if (values['trust-new'] === true) sec.trustNew = true;
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

/** The first profile no live process holds (docs/security.md "Trust": what an identity belongs to). */
function freeProfile(env: NodeJS.ProcessEnv): string {
  const base = defaultIdentityBase(env);
  for (let n = 1; n <= MAX_PROFILES; n++) {
    const dir = profileDir(base, n);
    if (profileHolder(dir) === undefined) return dir;
  }
  return profileDir(base, 1); // all held: the session says so (ERR_IDENTITY_IN_USE)
}

/**
 * The command's session. A profile picked by default that another process took meanwhile
 * (two started at once) is skipped for the next free one; an --identity given is used as is.
 */
export function newSession(options: PeerSessionOptions, values: SessionFlagValues, env: NodeJS.ProcessEnv): PeerSession {
  for (let attempt = 0; ; attempt++) {
    try {
      return new PeerSession(options);
    } catch (err) {
      const sec = options.security;
      if (!isPeerlinkError(err, 'ERR_IDENTITY_IN_USE') || sec?.mode !== 'pki' || values.identity !== undefined || attempt >= MAX_PROFILES) throw err;
      options = { ...options, security: { ...sec, identityDir: freeProfile(env) } };
    }
  }
}
