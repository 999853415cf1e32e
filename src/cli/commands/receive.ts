/**
 * `peerlink receive --service NAME [--dir D]` — joins the session as a receiver and
 * saves the files peers offer it under their sent names (a clash gets a numbered suffix),
 * until SIGINT / SIGTERM or --timeout (exit 0 either way, after a clean shutdown).
 * Each offer is accepted only with consent: asked on a terminal, given by --yes, refused
 * otherwise. Refused and failed transfers are reported and the command carries on.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { type PeerID, type SessionResourceOptions, type ResourceOffer } from '../../session/index.js';
import { ResourceStore, type IncomingResource } from '../../session/resource-transfer.js';
import { selectInterfaces } from '../../path/interfaces.js';
import { folderNote } from '../folder-note.js';
import { isPeerlinkError } from '../../errors.js';
import { jsonLine, parse, parsePort, parseSeconds, UsageError } from '../args.js';
import { EXIT_OK, type CliIO } from '../io.js';
import { newSession, reportWideArea, sessionFlags, sessionOptionsFromFlags, SESSION_FLAGS_HELP } from '../session-flags.js';
import { wireTrust, VERIFY_QUESTION } from '../trust-prompt.js';
import { ProgressRenderer, ProgressThrottle, formatBytes, printable } from '../progress.js';
import { ConsentPrompt } from '../consent-prompt.js';
import { untilAborted } from './advertise.js';

export const summary = 'receive files sent with `peerlink send`, until stopped';

const USAGE = `Usage: peerlink receive --service NAME [--dir DIR] [--yes] [options]
       peerlink receive --list-partial | --discard-partial [--dir DIR]

Joins the session NAME as a receiver. Each incoming offer (sender, file names, sizes)
is asked about on the terminal and accepted on "y"; without a terminal offers are
refused unless --yes is given. Accepted files are saved in DIR (default: the current
directory) under the name they were sent with; an existing file is never replaced (the
new one becomes "name (1).ext"). Names that could escape DIR or are not portable are
refused. Runs until Ctrl-C, SIGTERM or --timeout; exit status 0.

An interrupted transfer (the sender stopped or lost, this receiver stopped) leaves a
hidden partial file in DIR (.peerlink-partial-*.part and .json): the same file sent
again resumes from it, after its bytes are checked block by block. On start, receive
says how many it holds. Partial files unused for 7 days are removed; a transfer the
sender cancels, or that fails verification, leaves none.

Options:
  --dir DIR            where to save files (created if missing; default: .)
  --yes                accept every offer without asking (says nothing about keys)
  --port PORT          listen on this port (default: any free port); senders can
                       then use 'peerlink send --connect HOST:PORT'
  --quota BYTES        most bytes this run may write (saved + in progress + the
                       bytes partial files hold); larger transfers are refused
                       before a byte is written
  --timeout SECONDS    stop after this long
  --list-partial       list the partial files in DIR (name, bytes held, size,
                       expiry) and exit
  --discard-partial    remove the partial files in DIR and exit
${SESSION_FLAGS_HELP}
`;

/** Temporary files of the resource store (resource-store.ts): `.peerlink-<pid>-<hex>.part` (older: `.peerlink-<hex>.part`). */
const PARTIAL_FILE = /^\.peerlink-(?:\d+-)?[0-9a-f]+\.part$/;

async function partialFiles(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) {
    if (!PARTIAL_FILE.test(e)) continue;
    const st = await stat(join(dir, e)).catch(() => undefined);
    if (st?.isFile()) out.set(e, st.size);
  }
  return out;
}

/** `--list-partial` / `--discard-partial`: the download directory's partial files, without starting a session. */
async function partialCommand(dir: string, discard: boolean, json: boolean, io: CliIO): Promise<number> {
  const store = new ResourceStore({ directory: dir });
  const list = discard ? await store.discardPartial() : await store.listPartial();
  for (const p of list) {
    if (json) jsonLine(io, { event: discard ? 'discarded' : 'partial', file: p.name, kind: p.kind, bytes: p.bytes, size: p.size, updatedAt: p.updatedAt.toISOString(), expiresAt: p.expiresAt.toISOString() });
    else {
      const pct = p.size > 0 ? Math.floor((p.bytes * 100) / p.size) : 100;
      io.stdout.write(`${discard ? 'removed\t' : ''}${printable(p.name)}${p.kind === 'folder' ? '/' : ''}\t${formatBytes(p.bytes)} of ${formatBytes(p.size)} (${pct} %)\t${discard ? '' : `expires ${p.expiresAt.toISOString()}`}\n`);
    }
  }
  if (!json) io.stderr.write(`${discard ? 'removed' : 'holding'} ${list.length} partial file${list.length === 1 ? '' : 's'} or folder${list.length === 1 ? '' : 's'} in ${dir}\n`);
  return EXIT_OK;
}

/** Where senders can reach us: every address of the interfaces in use, as HOST:PORT. */
function reachableAt(interfaces: string[] | undefined, port: number): string[] {
  const routable: string[] = [];
  const linkLocal: string[] = [];
  for (const i of selectInterfaces(interfaces)) {
    for (const a of i.addresses) {
      if (a.family === 'IPv4') routable.push(`${a.address}:${port}`);
      else if (a.scope === 'link') linkLocal.push(`[${a.address}%${i.name}]:${port}`);
      else routable.push(`[${a.address}]:${port}`);
    }
  }
  return routable.length ? routable : linkLocal;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...sessionFlags,
    dir: { type: 'string' },
    quota: { type: 'string' },
    port: { type: 'string' },
    yes: { type: 'boolean' },
    timeout: { type: 'string' },
    'list-partial': { type: 'boolean' },
    'discard-partial': { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (values['list-partial'] === true || values['discard-partial'] === true) {
    if (values['list-partial'] === true && values['discard-partial'] === true) throw new UsageError('give --list-partial or --discard-partial, not both');
    return partialCommand(resolvePath(values.dir ?? '.'), values['discard-partial'] === true, values.json === true, io);
  }
  if (positionals.length > 0) throw new UsageError(`receive takes no arguments (got "${positionals[0]}")`);
  const timeout = parseSeconds('--timeout', values.timeout);
  let quota: number | undefined;
  if (values.quota !== undefined) {
    quota = Number(values.quota);
    if (!Number.isSafeInteger(quota) || quota < 0) throw new UsageError(`--quota expects a number of bytes, got "${values.quota}"`);
  }
  const port = values.port === undefined ? undefined : parsePort(values.port);
  const json = values.json === true;
  const verbose = values.verbose === true;
  const dir = resolvePath(values.dir ?? '.');
  const options = sessionOptionsFromFlags(values, io, 'receive');
  const ours = options.security?.mode ?? 'none';
  const terminal = (io.stdin as { isTTY?: boolean }).isTTY === true;
  const consent: 'all' | 'ask' | 'none' = values.yes === true ? 'all' : terminal ? 'ask' : 'none';
  const prompt = consent === 'ask' ? new ConsentPrompt(io.stdin, io.stderr) : undefined;
  // First-contact codes are asked on a terminal even with --yes (which is about offers, not keys).
  const keyPrompt = prompt ?? (terminal && options.security?.mode === 'pki' ? new ConsentPrompt(io.stdin, io.stderr) : undefined);
  const progress = new ProgressRenderer(io.stderr, io.env);
  const name = (p: PeerID): string => printable(p.displayName);

  async function accept(offer: ResourceOffer): Promise<boolean> {
    const files = offer.folder
      ? `the folder "${printable(offer.folder.name)}" (${offer.files.length} files, ${offer.folder.dirs} directories${offer.folder.skipped.length > 0 ? `; ${offer.folder.skipped.length} symlinks or special files left out by the sender` : ''})`
      : offer.files
      .map((f) => `"${printable(f.name)}" (${formatBytes(f.size)}${f.held ? `, ${Math.floor((f.held * 100) / Math.max(1, f.size))} % already here from an interrupted transfer` : ''})`)
      .join(', ');
    const what = offer.folder
      ? `${name(offer.peer)} offers ${files}, ${formatBytes(offer.totalBytes)} in all.`
      : `${name(offer.peer)} offers ${offer.files.length === 1 ? 'a file' : `${offer.files.length} files`}: ${files}${offer.files.length > 1 ? `, ${formatBytes(offer.totalBytes)} in all` : ''}.`;
    const ok = prompt ? await prompt.ask(what, offer.signal) : consent === 'all';
    if (json) jsonLine(io, { event: 'offer', peer: offer.peer.displayName, files: offer.files.map((f) => ({ name: f.name, size: f.size })), totalBytes: offer.totalBytes, accepted: ok });
    else if (!prompt) progress.log(`${what} ${ok ? 'Accepted (--yes).' : 'Refused: not a terminal and no --yes.'}`);
    else if (!ok) progress.log(`refused ${files} from ${name(offer.peer)}`);
    return ok;
  }
  const resources: SessionResourceOptions = { directory: dir, accept };
  if (quota !== undefined) resources.quota = quota;
  const session = newSession({
    ...options,
    ...(port !== undefined ? { port } : {}),
    // Receivers wait to be found: senders browse for role=receiver and dial in.
    autoConnect: false,
    discoveryInfo: { role: 'receiver' },
    resources,
  }, values, io.env);
  reportWideArea(session, io, values.json === true, values.verbose === true);

  wireTrust(session, {
    ask: keyPrompt ? (q, signal) => keyPrompt.ask(q, signal, { suffix: VERIFY_QUESTION, withdrawn: '(verification ended)' }) : undefined,
    log: (text) => progress.log(text),
    ...(json ? { json: (obj: Record<string, unknown>) => jsonLine(io, obj) } : {}),
  });
  // autoConnect: false makes every sender's connection an invitation: a receiver lets senders
  // in, and asks about each offer (the consent that matters) instead of each connection.
  session.on('invitation', (inv) => {
    inv.accept().catch(() => undefined);
  });
  session.on('peer', (peer, state) => {
    if (json) jsonLine(io, { event: 'peer', peer: peer.displayName, id: peer.id, state });
    else if (state === 'connected') progress.log(`+ ${name(peer)} connected`);
    else if (state === 'notConnected') progress.log(`- ${name(peer)} left`);
    else if (verbose) progress.log(`~ ${name(peer)} connecting`);
  });
  session.on('peerError', (err, info) => {
    const who = info.peer ? name(info.peer) : `a peer at ${printable(info.endpoint ?? 'an unknown address')}`;
    const why = err.code === 'ERR_PSK_MISMATCH' ? (ours === 'psk' ? `${who} tried to connect with a different key` : `${who} tried to connect with a key`) : `${who}: ${err.message}`;
    if (json) jsonLine(io, { event: 'peerError', peer: info.peer?.displayName, endpoint: info.endpoint, code: err.code, message: err.message });
    else progress.log(`peerlink: ${why} (${err.code})`);
  });
  session.on('found', (info) => {
    // Senders do not advertise; what is found here is other receivers and chat peers.
    const sec = info.txt.sec;
    if (!verbose || json || info.compatible || typeof sec !== 'string' || sec === ours) return;
    const mode = (m: string): string => (m === 'none' ? 'no encryption (--insecure)' : m === 'pki' ? '--pki' : 'a shared key');
    progress.log(`peer "${printable(info.instanceName)}" of this service uses ${mode(sec)}, this receiver ${mode(ours)}, so they cannot connect`);
  });
  session.on('resource', (incoming: IncomingResource<PeerID>) => track(incoming));
  // Offers refused before they were accepted (quota, free space, name, too many at once, too
  // slow to answer); a "no" at the prompt or without --yes is reported by accept() itself.
  session.on('resourceRefused', (offer, err) => {
    if (err.code === 'ERR_RESOURCE_REFUSED') return;
    if (json) jsonLine(io, { event: 'failed', file: offer.name, peer: offer.peer.displayName, code: err.code, message: err.message });
    else progress.log(`peerlink: refused "${printable(offer.name)}" (${formatBytes(offer.size)}) from ${name(offer.peer)}: ${err.message} (${err.code})`);
  });

  function track(incoming: IncomingResource<PeerID>): void {
    const from = incoming.peer.displayName;
    const file = incoming.name;
    const shown = incoming.printableName;
    if (json) jsonLine(io, { event: 'receiving', file, peer: from, size: incoming.size });
    const task = json ? undefined : progress.start(shown, incoming.size, `receiving ${shown} (${formatBytes(incoming.size)}) from ${name(incoming.peer)}`);
    const throttle = new ProgressThrottle();
    incoming.on('resumed', ({ offset }) => {
      if (offset <= 0) return;
      if (json) jsonLine(io, { event: 'resuming', file, peer: from, offset, total: incoming.size });
      else progress.log(`resuming ${shown} at ${Math.floor((offset * 100) / Math.max(1, incoming.size))} % (${formatBytes(offset)} already here, checked)`);
    });
    incoming.on('progress', (p) => {
      task?.update(p);
      if (json && throttle.ready(p)) jsonLine(io, { event: 'progress', file, peer: from, bytes: p.bytes, total: p.total, rate: p.rate });
    });
    incoming.done.then(
      (r) => {
        if (json) jsonLine(io, { event: 'received', file, savedAs: r.name, path: r.path, size: r.size, sha256: r.sha256, peer: from });
        else {
          task?.finish(true, `received ${shown} from ${name(incoming.peer)}${r.name !== file ? ` as "${printable(r.name)}"` : ''} — SHA-256 verified`);
          io.stdout.write(`${r.path}\t${formatBytes(r.size)}\tsha256 ${r.sha256}\n`);
        }
        if (r.folder) folderNote(r.folder, (line) => (json ? undefined : progress.log(line)));
        if (r.folder && json) jsonLine(io, { event: 'folder', file, files: r.folder.files, dirs: r.folder.dirs, skipped: r.folder.skipped, changed: r.folder.changed });
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
    // Partial files of an earlier run that was killed: the store removes them when it
    // starts; either way the user hears about them (never garbage left silently).
    const before = await partialFiles(dir);
    await session.start();
    const where = await session.resourceDirectory();
    const after = await partialFiles(where);
    for (const [file, size] of before) {
      const left = after.has(file);
      const msg = left
        ? `found ${file} (${formatBytes(size)}) in ${where}: a partial file of an interrupted transfer, not resumed; delete it unless another receive uses this directory`
        : `removed ${file} (${formatBytes(size)}): a temporary file an earlier version left`;
      if (json) jsonLine(io, { event: 'partialFile', file, size, removed: !left });
      io.stderr.write(`peerlink: ${msg}\n`);
    }
    const held = await session.listPartialResources();
    if (held.length > 0) {
      const bytes = held.reduce((n, p) => n + p.bytes, 0);
      if (json) jsonLine(io, { event: 'partialFiles', count: held.length, bytes, files: held.map((p) => ({ name: p.name, kind: p.kind, bytes: p.bytes, size: p.size })) });
      else io.stderr.write(`holding ${held.length} partial file${held.length === 1 ? '' : 's'} of interrupted transfers (${formatBytes(bytes)}); ${held.length === 1 ? 'it resumes' : 'they resume'} when sent again (--list-partial, --discard-partial)\n`);
    }
    const instance = session.instanceName ?? session.peerId.displayName;
    const addresses = reachableAt(options.interfaces, session.listenPort);
    if (json) jsonLine(io, { event: 'listening', service: `_${options.serviceType}._tcp`, name: instance, port: session.listenPort, addresses, dir: where, accept: consent });
    else {
      io.stderr.write(`receiving for service _${options.serviceType}._tcp as "${printable(instance)}" (port ${session.listenPort}); saving to ${where}; Ctrl-C to stop\n`);
      if (addresses.length) io.stderr.write(`reachable at ${addresses.join(', ')} (for 'peerlink send --connect HOST:PORT')\n`);
    }
    if (consent === 'none') io.stderr.write('peerlink: not a terminal, so every offer will be refused; give --yes to accept them\n');
    else if (consent === 'all' && !json) io.stderr.write('accepting every offer (--yes)\n');
    await untilAborted(io.signal, timeout === undefined ? undefined : timeout * 1000);
  } finally {
    keyPrompt?.close();
    progress.close();
    await session.close();
  }
  return EXIT_OK;
}
