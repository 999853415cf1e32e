/**
 * `peerlink receive --service NAME [--dir D]` — joins the session as a receiver and
 * saves every file peers send under its sent name (a clash gets a numbered suffix),
 * until SIGINT / SIGTERM or --timeout (exit 0 either way, after a clean shutdown).
 * Refused and failed transfers are reported and the command carries on.
 */
import { resolve as resolvePath } from 'node:path';
import { PeerSession, type PeerID } from '../../session/index.js';
import type { IncomingResource } from '../../session/resource-transfer.js';
import { isPeerlinkError } from '../../errors.js';
import { jsonLine, parse, parseSeconds, UsageError } from '../args.js';
import { EXIT_OK, type CliIO } from '../io.js';
import { sessionFlags, sessionOptionsFromFlags, SESSION_FLAGS_HELP } from '../session-flags.js';
import { ProgressRenderer, ProgressThrottle, formatBytes, printable } from '../progress.js';
import { untilAborted } from './advertise.js';

export const summary = 'receive files sent with `peerlink send`, until stopped';

const USAGE = `Usage: peerlink receive --service NAME [--dir DIR] [options]

Joins the session NAME as a receiver and saves each file sent to it in DIR (default:
the current directory) under the name it was sent with; an existing file is never
replaced (the new one becomes "name (1).ext"). Names that could escape DIR or are not
portable are refused. Runs until Ctrl-C, SIGTERM or --timeout; exit status 0.

Options:
  --dir DIR            where to save files (created if missing; default: .)
  --quota BYTES        most bytes this run may write (saved + in progress); larger
                       transfers are refused before a byte is written
  --timeout SECONDS    stop after this long
${SESSION_FLAGS_HELP}
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...sessionFlags,
    dir: { type: 'string' },
    quota: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`receive takes no arguments (got "${positionals[0]}")`);
  const timeout = parseSeconds('--timeout', values.timeout);
  let quota: number | undefined;
  if (values.quota !== undefined) {
    quota = Number(values.quota);
    if (!Number.isSafeInteger(quota) || quota < 0) throw new UsageError(`--quota expects a number of bytes, got "${values.quota}"`);
  }
  const json = values.json === true;
  const verbose = values.verbose === true;
  const dir = resolvePath(values.dir ?? '.');
  const options = sessionOptionsFromFlags(values, io, 'receive');
  const session = new PeerSession({
    ...options,
    // Receivers wait to be found: senders browse for role=receiver and dial in.
    autoConnect: false,
    discoveryInfo: { role: 'receiver' },
    resources: quota === undefined ? { directory: dir } : { directory: dir, quota },
  });
  const progress = new ProgressRenderer(io.stderr, io.env);
  const name = (p: PeerID): string => printable(p.displayName);

  session.on('peer', (peer, state) => {
    if (json) jsonLine(io, { event: 'peer', peer: peer.displayName, id: peer.id, state });
    else if (verbose || state !== 'connecting') progress.log(`${state === 'connected' ? '+' : state === 'notConnected' ? '-' : '~'} ${name(peer)} ${state}`);
  });
  session.on('peerError', (err, info) => {
    if (json) jsonLine(io, { event: 'peerError', peer: info.peer?.displayName, code: err.code, message: err.message });
    else progress.log(`peerlink: ${info.peer ? name(info.peer) : (info.endpoint ?? 'a peer')}: ${err.message} (${err.code})`);
  });
  session.on('resource', (incoming: IncomingResource<PeerID>) => track(incoming));

  function track(incoming: IncomingResource<PeerID>): void {
    const from = incoming.peer.displayName;
    const file = incoming.name;
    const shown = incoming.printableName;
    if (json) jsonLine(io, { event: 'receiving', file, peer: from, size: incoming.size });
    const task = json ? undefined : progress.start(shown, incoming.size, `receiving ${shown} (${formatBytes(incoming.size)}) from ${name(incoming.peer)}`);
    const throttle = new ProgressThrottle();
    incoming.on('progress', (p) => {
      task?.update(p);
      if (json && throttle.ready(p)) jsonLine(io, { event: 'progress', file, peer: from, bytes: p.bytes, total: p.total, rate: p.rate });
    });
    incoming.done.then(
      (r) => {
        if (json) jsonLine(io, { event: 'received', file, savedAs: r.name, path: r.path, size: r.size, sha256: r.sha256, peer: from });
        else {
          task?.finish(true, `received ${shown} from ${name(incoming.peer)} — SHA-256 verified`);
          io.stdout.write(`${r.path}\t${formatBytes(r.size)}\tsha256 ${r.sha256}\n`);
        }
      },
      (err: unknown) => {
        const code = isPeerlinkError(err) ? err.code : 'ERR_INTERNAL';
        const message = (err as Error).message;
        if (json) jsonLine(io, { event: 'failed', file, peer: from, code, message });
        else if (task) task.finish(false, `${shown} from ${name(incoming.peer)}: ${message} (${code})`);
        else progress.log(`peerlink: ${shown} from ${name(incoming.peer)}: ${message} (${code})`);
      },
    );
  }

  try {
    await session.start();
    const where = await session.resourceDirectory();
    if (json) jsonLine(io, { event: 'listening', service: `_${options.serviceType}._tcp`, name: session.instanceName ?? session.peerId.displayName, port: session.listenPort, dir: where });
    else io.stderr.write(`receiving for service _${options.serviceType}._tcp as "${printable(session.instanceName ?? session.peerId.displayName)}" (port ${session.listenPort}); saving to ${where}; Ctrl-C to stop\n`);
    await untilAborted(io.signal, timeout === undefined ? undefined : timeout * 1000);
  } finally {
    progress.close();
    await session.close();
  }
  return EXIT_OK;
}
