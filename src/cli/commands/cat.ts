/**
 * `peerlink cat` — nwcat / nc for peerlink's stacks: stdin to the connection, the connection
 * to stdout, byte-exact. See ../shared/CLI.md ("cat specifics") and docs/cli.md.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { PeerlinkError, isPeerlinkError } from '../../errors.js';
import { listInterfaces, selectInterfaces } from '../../path/interfaces.js';
import {
  Connection,
  Endpoint,
  Listener,
  Parameters,
  formatReport,
  generateIdentity,
  parsePin,
  parsePsk,
  type ConnectionState,
  type ListenerOptions,
  type StreamParametersOptions,
  type TlsOptions,
} from '../../net/index.js';
import { parseCommand, parsePort, parseSeconds, UsageError } from '../args.js';
import { EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_TIMEOUT, type CliIO } from '../io.js';

export const summary = 'connect or listen, and copy stdin/stdout over TCP, TLS, WebSocket or UDP';

const USAGE = `Usage: peerlink cat [options] host port
       peerlink cat -l [options] [host] port
       peerlink cat [options] --service INSTANCE:TYPE

Copies stdin to the connection and the connection to stdout, byte for byte. At stdin EOF
a TCP/TLS connection half-closes and keeps reading; the command ends when both directions
are closed.

Options:
  -l, --listen          listen on [host] port (default host: all addresses), serve one
                        connection, then exit when it ends (port 0 picks one; printed on stderr)
  -u, --udp             UDP: each stdin read is one datagram, each datagram one write
  --ws                  WebSocket (each stdin read is one message); at stdin EOF the closing
                        handshake starts, unless nothing was sent (empty stdin): then it
                        waits for the peer to close. If the peer closes first while stdin
                        still has data, exit 1 (ERR_CLOSED)
  --keep-open           with --ws: at stdin EOF wait for the peer to close instead
  --tls                 TLS with certificates (implied by --cert / --ca / --pin)
  --cert FILE --key FILE  our certificate and key (PEM). A listener without them makes an
                        ephemeral self-signed identity and prints its pin on stderr
  --ca FILE             trust this CA (PEM) instead of the system roots
  --pin PIN             trust a peer whose public key has this pin (sha256/BASE64 or hex;
                        repeatable)
  --psk HEX             TLS-PSK key (hex, >= 16 bytes; visible in /proc: prefer --psk-file
                        or --psk-env). An empty key is a usage error
  --psk-file FILE       read the PSK (hex) from FILE
  --psk-env             read the PSK (hex) from PEERLINK_PSK; without this flag cat ignores
                        the variable. Where the key came from is said on stderr
  --psk-identity ID     PSK identity to send; a listener given one accepts only it
  --advertise NAME:TYPE with -l: also register a Bonjour service (e.g. "Den:_demo._tcp")
  --service INSTANCE:TYPE  connect to a Bonjour instance instead of host port
  --interface IF        use only this interface (repeatable; lo only when named)
  --wait SECONDS        client: retry a refused connection for this long (default: exit 1 at once)
  --timeout SECONDS     give up after this long (client: exit 124; listener waiting: exit 0)
  --verbose             state changes and the connection report on stderr
  -h, --help            this help
  Environment: PEERLINK_PSK (hex key), read only with --psk-env

Exit status: 0 done; 1 the connection failed (refused, handshake, reset, a plain client of a
TLS listener: ERR_TLS_REQUIRED) or the peer closed before all of stdin was sent (ERR_CLOSED);
2 usage error (including an empty key);
124 --timeout ran out; 130 SIGINT / 143 SIGTERM (a listener still waiting exits 0).
`;

interface Flags {
  listen?: boolean;
  udp?: boolean;
  ws?: boolean;
  'keep-open'?: boolean;
  tls?: boolean;
  cert?: string;
  key?: string;
  ca?: string;
  pin?: string[];
  psk?: string;
  'psk-file'?: string;
  'psk-env'?: boolean;
  'psk-identity'?: string;
  advertise?: string;
  service?: string;
  interface?: string[];
  wait?: string;
  timeout?: string;
  verbose?: boolean;
}

function readText(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** Splits INSTANCE:TYPE at the last ':' (instance names may contain ':'). */
function splitService(flag: string, v: string): { name: string; type: string } {
  const i = v.lastIndexOf(':');
  if (i <= 0 || i === v.length - 1) throw new UsageError(`${flag} expects INSTANCE:TYPE, e.g. "Living Room:_example._tcp"`);
  return { name: v.slice(0, i), type: v.slice(i + 1) };
}

/** A key and where it came from, for the line that says so on stderr. */
interface PskChoice {
  hex: string;
  source: string;
}

/**
 * The key from --psk, --psk-file or (only with --psk-env) PEERLINK_PSK: an exported key never
 * silently turns a plain `cat` into TLS. An empty or blank key is a usage error, never "no key".
 */
function pskFrom(f: Flags, env: NodeJS.ProcessEnv): PskChoice | undefined {
  const given = [f.psk !== undefined && '--psk', f['psk-file'] !== undefined && '--psk-file', f['psk-env'] === true && '--psk-env'].filter((x): x is string => x !== false);
  if (given.length > 1) throw new UsageError(`give the key once: ${given.join(' or ')}`);
  let choice: PskChoice | undefined;
  if (f.psk !== undefined) choice = { hex: f.psk, source: '--psk (visible to other users in /proc: prefer --psk-file)' };
  else if (f['psk-file'] !== undefined) choice = { hex: readText('--psk-file', f['psk-file']), source: `--psk-file ${f['psk-file']}` };
  else if (f['psk-env']) {
    if (env.PEERLINK_PSK === undefined) throw new UsageError('--psk-env: PEERLINK_PSK is not set');
    choice = { hex: env.PEERLINK_PSK, source: 'PEERLINK_PSK (--psk-env)' };
  }
  if (!choice) return undefined;
  if (choice.hex.trim() === '') throw new UsageError(`the key from ${given[0] === '--psk-env' ? 'PEERLINK_PSK' : given[0]} is empty; a TLS-PSK key is hex, at least 16 bytes (e.g. openssl rand -hex 32)`);
  try {
    parsePsk(choice.hex.trim());
  } catch (err) {
    throw new UsageError(isPeerlinkError(err) ? err.message : String(err));
  }
  return { hex: choice.hex.trim(), source: choice.source };
}

/** Builds the TLS options (or none); a PKI listener without --cert gets an ephemeral identity. */
async function tlsFrom(f: Flags, io: CliIO): Promise<TlsOptions | undefined> {
  const psk = pskFrom(f, io.env);
  const pki = f.tls === true || f.cert !== undefined || f.key !== undefined || f.ca !== undefined || (f.pin?.length ?? 0) > 0;
  if (psk !== undefined && pki) throw new UsageError('choose one: --psk (pre-shared key) or --tls/--cert/--ca/--pin (certificates)');
  if ((psk !== undefined || pki) && f.udp) throw new UsageError('-u cannot be combined with TLS (there is no DTLS here); use TCP or --ws');
  if (psk !== undefined) {
    io.stderr.write(`peerlink: TLS-PSK with the key from ${psk.source}\n`);
    return { psk: { key: psk.hex, ...(f['psk-identity'] !== undefined ? { identity: f['psk-identity'] } : {}) } };
  }
  if (!pki) {
    if (f['psk-identity'] !== undefined) throw new UsageError('--psk-identity needs a key (--psk, --psk-file or --psk-env)');
    if ((io.env.PEERLINK_PSK ?? '').trim() !== '') io.stderr.write('peerlink: PEERLINK_PSK is set but not used: cat reads it only with --psk-env (this connection is not encrypted)\n');
    return undefined;
  }
  if ((f.cert === undefined) !== (f.key === undefined)) throw new UsageError('--cert and --key go together');
  for (const p of f.pin ?? []) {
    try {
      parsePin(p);
    } catch (err) {
      throw new UsageError(isPeerlinkError(err) ? err.message : String(err));
    }
  }
  let cert = f.cert !== undefined ? readText('--cert', f.cert) : undefined;
  let key = f.key !== undefined ? readText('--key', f.key) : undefined;
  if (f.listen && cert === undefined) {
    const id = await generateIdentity({ commonName: 'peerlink cat' });
    cert = id.cert;
    key = id.key;
    io.stderr.write(`peerlink: using an ephemeral self-signed certificate; its pin is ${id.pin}\n`);
  }
  return {
    pki: {
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(f.ca !== undefined ? { ca: readText('--ca', f.ca) } : {}),
      ...(f.pin?.length ? { pins: f.pin } : {}),
      // A listener checks client certificates only when told whom to trust.
      ...(f.listen && (f.ca !== undefined || f.pin?.length) ? { requireClientCertificate: true } : {}),
    },
  };
}

function parametersFrom(f: Flags, tls: TlsOptions | undefined, interfaces: string[] | undefined, wait: number | undefined): Parameters {
  // One named interface is required; with several, every other one is prohibited.
  const constraints: StreamParametersOptions =
    interfaces?.length === 1
      ? { requiredInterface: interfaces[0] as string }
      : interfaces && interfaces.length > 1
        ? { prohibitedInterfaces: listInterfaces().map((i) => i.name).filter((n) => !interfaces.includes(n)) }
        : {};
  const retry = wait !== undefined ? { initialDelay: 200, maxDelay: 1000 } : { automatic: false };
  if (f.udp) return Parameters.udp({ ...constraints, retry });
  if (f.ws) return Parameters.ws({ ...constraints, retry, keepalive: true, ...(tls ? { tls } : {}) });
  return tls ? Parameters.tls(tls, { ...constraints, retry }) : Parameters.tcp({ ...constraints, retry });
}

/** What became of stdin, for the exit status: a copy cut short must never look like success. */
interface InputState {
  /** A plain client got a TLS alert as the whole reply: the listener wants TLS. */
  sawTlsAlert: boolean;
  /** Bytes read from stdin and accepted by the connection. */
  sent: number;
  /** stdin reached EOF and everything read was accepted. */
  eof: boolean;
  /** Bytes read from stdin that the connection did not accept (it closed or failed first). */
  unsent: number;
}

/**
 * stdin → connection. Message protocols: one read, one message (UDP: split at maximumDatagramSize).
 * WebSocket has no half-close, so its closing handshake at stdin EOF ends the peer's sending
 * too: a side that sent nothing has nothing to end and waits for the peer to close instead, so
 * that a receiver whose stdin is empty (`< /dev/null`, a script) never cuts the sender short.
 */
async function pumpIn(io: CliIO, c: Connection, f: Flags, st: InputState): Promise<void> {
  for await (const chunk of io.stdin as AsyncIterable<Buffer | string>) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (b.length === 0) continue;
    st.unsent += b.length;
    if (c.state !== 'ready') return;
    if (f.udp) {
      const max = c.maximumDatagramSize;
      for (let off = 0; off < b.length; off += max) await c.send(b.subarray(off, off + max));
    } else await c.send(b);
    st.unsent -= b.length;
    st.sent += b.length;
  }
  st.eof = true;
  if (c.state !== 'ready' || f.udp) return;
  if (f.ws && (f['keep-open'] || st.sent === 0)) return;
  await c.send(Buffer.alloc(0), { final: true }).catch(() => undefined);
}

/** A TLS alert record (RFC 8446 §5.1, §6): 0x15, version 3.x, length 2. */
function isTlsAlert(b: Buffer): boolean {
  return b.length === 7 && b[0] === 0x15 && b[1] === 0x03 && (b[2] ?? 9) <= 0x04 && b[3] === 0x00 && b[4] === 0x02;
}

/**
 * connection → stdout, respecting stdout's backpressure. On a plain byte stream, a reply that is
 * one TLS alert and then the end is a TLS listener refusing us: it is not written to stdout,
 * and `sawTlsAlert` says so.
 */
async function pumpOut(io: CliIO, c: Connection, message: boolean, plain: boolean, st: { sawTlsAlert: boolean }): Promise<void> {
  let first = !message && plain;
  let held: Buffer | undefined;
  for (;;) {
    const b = message ? await c.receiveMessage() : await c.receive(1, 256 * 1024);
    if (b === null) {
      if (held && isTlsAlert(held)) {
        st.sawTlsAlert = true;
        // Nothing more will come from a peer that refused us: do not wait on our stdin.
        c.forceCancel();
      } else if (held) io.stdout.write(held);
      return;
    }
    let out: Buffer = b;
    if (first) {
      held = held ? Buffer.concat([held, b]) : b;
      // Wait for the end only while what came so far may still be exactly one alert record.
      if (held.length < 7 ? held[0] === 0x15 : isTlsAlert(held)) continue;
      first = false;
      out = held;
      held = undefined;
    }
    if (!io.stdout.write(out)) await once(io.stdout, 'drain');
  }
}

function logState(io: CliIO, what: string, s: string, err?: PeerlinkError): void {
  io.stderr.write(`peerlink: ${what} ${s}${err ? ` (${err.code}: ${err.message})` : ''}\n`);
}

/** Resolves when the connection reaches a final state. */
function finished(c: Connection): Promise<ConnectionState> {
  if (c.state === 'failed' || c.state === 'cancelled') return Promise.resolve(c.state);
  return new Promise((resolve) => {
    const on = (s: ConnectionState): void => {
      if (s === 'failed' || s === 'cancelled') {
        c.off('state', on);
        resolve(s);
      }
    };
    c.on('state', on);
  });
}

type Outcome = { kind: 'done'; state: ConnectionState } | { kind: 'signal'; signal: string } | { kind: 'timeout' };

/** How long a connection that ended may wait for a stdin read in flight to show it had more. */
const CUT_GRACE_MS = 200;

/** Copies both ways until the connection ends, a signal arrives or the timeout runs out. */
async function serve(io: CliIO, c: Connection, f: Flags, deadline: Promise<'timeout'>, st: InputState): Promise<Outcome> {
  const message = c.parameters.isMessageProtocol;
  const input = pumpIn(io, c, f, st).catch(() => undefined);
  const output = pumpOut(io, c, message, c.parameters.tls === undefined && !f.udp, st).catch(() => undefined);
  const signal = new Promise<Outcome>((resolve) => {
    const on = (): void => resolve({ kind: 'signal', signal: String(io.signal.reason) });
    if (io.signal.aborted) on();
    else io.signal.addEventListener('abort', on, { once: true });
  });
  // A UDP flow has no end: it runs until a signal or the timeout.
  const outcome = await Promise.race([finished(c).then((state): Outcome => ({ kind: 'done', state })), signal, deadline.then((): Outcome => ({ kind: 'timeout' }))]);
  if (outcome.kind === 'done') {
    // Everything received goes to stdout before the exit status is decided.
    await output;
    // A read in flight (a file or a fast pipe) shows at once whether stdin had more than the
    // peer let us send; a terminal or a slow writer that has nothing to give now lost nothing yet.
    if (!st.eof && st.unsent === 0 && io.stdin.readableLength === 0) await Promise.race([input, new Promise((r) => setTimeout(r, CUT_GRACE_MS).unref())]);
  }
  return outcome;
}

/**
 * Interrupted: close cleanly (FIN / close_notify / WebSocket close), but do not wait on a peer
 * that keeps its side open — after a short grace the socket is destroyed so the process exits.
 */
function stop(c: Connection): void {
  c.cancel();
  setTimeout(() => c.forceCancel(), 500).unref();
}

function exitFor(o: Outcome, c: Connection | undefined, io: CliIO, f: Flags, listener: boolean, st: InputState): number {
  if (o.kind === 'signal') return f.udp ? EXIT_OK : o.signal === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT;
  if (o.kind === 'timeout') return f.udp || (listener && !c) ? EXIT_OK : EXIT_TIMEOUT;
  if (o.state === 'failed' && c?.error) {
    io.stderr.write(`peerlink: ${c.error.message} (${c.error.code})\n`);
    return EXIT_FAILED;
  }
  if (st.sawTlsAlert) {
    io.stderr.write('peerlink: the peer answered with a TLS alert and closed: it uses TLS and this connection does not (ERR_TLS_REQUIRED)\n');
    io.stderr.write('Give the key the peer uses (--psk-file FILE, or --psk-env with PEERLINK_PSK), or --tls / --pin for certificates.\n');
    return EXIT_FAILED;
  }
  if (!st.eof && (st.unsent > 0 || io.stdin.readableLength > 0)) {
    // The peer ended the connection while stdin still had data: the copy is short.
    const ws = f.ws === true;
    io.stderr.write(
      `peerlink: the peer closed the connection before all of stdin was sent (${st.sent} bytes sent, more were left) (ERR_CLOSED)\n` +
        (ws ? 'WebSocket has no half-close: the peer ended its input first. Give the receiving side --keep-open, or an empty stdin.\n' : ''),
    );
    return EXIT_FAILED;
  }
  return EXIT_OK;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(argv, io, USAGE, {
    listen: { type: 'boolean', short: 'l' },
    udp: { type: 'boolean', short: 'u' },
    ws: { type: 'boolean' },
    'keep-open': { type: 'boolean' },
    tls: { type: 'boolean' },
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    pin: { type: 'string', multiple: true },
    psk: { type: 'string' },
    'psk-file': { type: 'string' },
    'psk-env': { type: 'boolean' },
    'psk-identity': { type: 'string' },
    advertise: { type: 'string' },
    service: { type: 'string' },
    interface: { type: 'string', multiple: true },
    wait: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT_OK;
  const { values, positionals } = parsed;
  const f = values as Flags;
  const verbose = f.verbose === true;
  if (f.udp && f.ws) throw new UsageError('choose one: -u (UDP) or --ws (WebSocket)');
  if (f['keep-open'] && !f.ws) throw new UsageError('--keep-open applies to --ws');
  if (f.listen && f.service !== undefined) throw new UsageError('--service is for clients; a listener advertises with --advertise NAME:TYPE');
  if (!f.listen && f.advertise !== undefined) throw new UsageError('--advertise needs -l');
  if (f.listen && f.wait !== undefined) throw new UsageError('--wait is for clients');
  if (f.interface) selectInterfaces(f.interface); // unknown interface → exit 2
  const wait = parseSeconds('--wait', f.wait);
  const timeout = parseSeconds('--timeout', f.timeout);

  let host: string | undefined;
  let port = 0;
  if (f.listen) {
    if (positionals.length === 1) port = parsePort(positionals[0] as string);
    else if (positionals.length === 2) {
      host = positionals[0] as string;
      port = parsePort(positionals[1] as string);
    } else throw new UsageError('cat -l needs [host] port');
  } else if (f.service !== undefined) {
    if (positionals.length > 0) throw new UsageError('give either host port or --service INSTANCE:TYPE');
  } else {
    if (positionals.length !== 2) throw new UsageError('cat needs host port (or --service INSTANCE:TYPE)');
    host = positionals[0] as string;
    port = parsePort(positionals[1] as string);
    if (port === 0) throw new UsageError('cannot connect to port 0');
  }
  const advertise = f.advertise !== undefined ? splitService('--advertise', f.advertise) : undefined;
  const service = f.service !== undefined ? splitService('--service', f.service) : undefined;

  const tls = await tlsFrom(f, io);
  const params = parametersFrom(f, tls, f.interface, wait);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    if (timeout !== undefined) timer = setTimeout(() => resolve('timeout'), timeout * 1000);
  });
  try {
    return f.listen ? await runListener(io, f, params, host, port, advertise, deadline, verbose) : await runClient(io, f, params, host, port, service, wait, deadline, verbose);
  } finally {
    if (timer) clearTimeout(timer);
    // stdin may still be open (a pipe nobody closed): let the process exit anyway.
    io.stdin.pause();
    if (io.stdin === process.stdin) process.stdin.destroy();
  }
}

async function runClient(
  io: CliIO,
  f: Flags,
  params: Parameters,
  host: string | undefined,
  port: number,
  service: { name: string; type: string } | undefined,
  wait: number | undefined,
  deadline: Promise<'timeout'>,
  verbose: boolean,
): Promise<number> {
  const iface = f.interface?.length === 1 ? f.interface[0] : undefined;
  const endpoint = service ? Endpoint.service(service.name, service.type, 'local.', iface) : Endpoint.hostPort(host as string, port);
  const c = new Connection(endpoint, params);
  c.on('state', (s, err) => {
    if (verbose) logState(io, `[C${c.id}] ${Endpoint.format(endpoint)}`, s, err);
  });
  c.start();
  const waitUntil = wait !== undefined ? Date.now() + wait * 1000 : undefined;
  // Ready, failed, or waiting past --wait.
  const setup = new Promise<'ready' | 'failed'>((resolve) => {
    const check = (): void => {
      if (c.state === 'ready') resolve('ready');
      else if (c.state === 'failed' || c.state === 'cancelled') resolve('failed');
      else if (c.state === 'waiting' && (waitUntil === undefined || Date.now() >= waitUntil)) resolve('failed');
    };
    c.on('state', check);
    if (waitUntil !== undefined) setTimeout(check, Math.max(0, waitUntil - Date.now()) + 1).unref();
    check();
  });
  const signal = new Promise<string>((resolve) => {
    if (io.signal.aborted) resolve(String(io.signal.reason));
    else io.signal.addEventListener('abort', () => resolve(String(io.signal.reason)), { once: true });
  });
  const first = await Promise.race([setup, signal.then((s) => ({ signal: s })), deadline]);
  if (first === 'timeout') {
    c.forceCancel();
    io.stderr.write(`peerlink: no connection to ${Endpoint.format(endpoint)} before --timeout (ERR_TIMEOUT)\n`);
    return EXIT_TIMEOUT;
  }
  if (typeof first === 'object') {
    c.forceCancel();
    return first.signal === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT;
  }
  if (first === 'failed') {
    const err = c.error ?? new PeerlinkError('ERR_CONNECTION_REFUSED', 'connection failed');
    c.forceCancel();
    io.stderr.write(`peerlink: ${err.message} (${err.code})\n`);
    if (err.code === 'ERR_CONNECTION_REFUSED' && wait === undefined) io.stderr.write('Is the peer listening? --wait SECONDS retries while it is not.\n');
    return EXIT_FAILED;
  }
  const st: InputState = { sent: 0, eof: false, unsent: 0, sawTlsAlert: false };
  const outcome = await serve(io, c, f, deadline, st);
  if (outcome.kind !== 'done') stop(c);
  if (verbose) io.stderr.write(`${formatReport(c.report())}\n`);
  return exitFor(outcome, c, io, f, false, st);
}

async function runListener(
  io: CliIO,
  f: Flags,
  params: Parameters,
  host: string | undefined,
  port: number,
  advertise: { name: string; type: string } | undefined,
  deadline: Promise<'timeout'>,
  verbose: boolean,
): Promise<number> {
  const opts: ListenerOptions = { port };
  if (host !== undefined) opts.host = host;
  if (advertise) opts.service = { ...advertise, ...(f.interface ? { interfaces: f.interface } : {}) };
  const l = new Listener(params, opts);
  l.on('rejected', (err, remote) => io.stderr.write(`peerlink: refused ${remote || 'a client'}: ${err.message} (${err.code})\n`));
  l.on('serviceRegistration', (r) => {
    if (r.change === 'failed') io.stderr.write(`peerlink: could not advertise ${r.name}: ${r.error?.message ?? '?'} (${r.error?.code ?? 'ERR_INTERNAL'})\n`);
    else if (verbose || r.change === 'registered') io.stderr.write(`peerlink: ${r.change} ${r.name}.${r.type}.${r.domain}\n`);
  });
  const onListenerState = (s: string, err?: PeerlinkError): void => logState(io, 'listener', s, err);
  if (verbose) l.on('state', onListenerState);
  const first = new Promise<Connection>((resolve) => l.once('connection', resolve));
  await l.start();
  if (port === 0 || verbose) io.stderr.write(`peerlink: listening on ${l.host.includes(':') ? `[${l.host}]` : l.host} port ${l.port}\n`);
  const signal = new Promise<string>((resolve) => {
    if (io.signal.aborted) resolve(String(io.signal.reason));
    else io.signal.addEventListener('abort', () => resolve(String(io.signal.reason)), { once: true });
  });
  const got = await Promise.race([first, signal.then((s) => ({ signal: s })), deadline]);
  if (!(got instanceof Connection)) {
    // Still waiting for a peer: a signal or the timeout is the normal end.
    await l.cancel();
    return EXIT_OK;
  }
  const c = got;
  // One connection: stop accepting. A UDP flow keeps the listener's socket until it ends.
  // The listener's own end is not news here ("listener cancelled" read as if the client were).
  l.off('state', onListenerState);
  await l.cancel();
  if (verbose) {
    logState(io, `[C${c.id}] from ${c.currentPath ? Endpoint.format(c.currentPath.remoteEndpoint) : '?'}`, c.state);
    io.stderr.write('peerlink: listener: serving this connection, no longer accepting others\n');
    c.on('state', (s, err) => logState(io, `[C${c.id}]`, s, err));
  }
  const st: InputState = { sent: 0, eof: false, unsent: 0, sawTlsAlert: false };
  const outcome = await serve(io, c, f, deadline, st);
  if (outcome.kind !== 'done') stop(c);
  if (verbose) io.stderr.write(`${formatReport(c.report())}\n`);
  return exitFor(outcome, c, io, f, true, st);
}
