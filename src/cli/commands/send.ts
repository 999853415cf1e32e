/**
 * `peerlink send FILE... --service NAME [--to NAME] [--connect HOST:PORT]` — finds the
 * receivers of the session (peers advertising role=receiver, and peers given by address),
 * sends each of them every FILE, and exits 0 once every receiver reached has confirmed
 * every file (size and SHA-256 verified) and no receiver found was left unreached.
 *
 * Sending to a receiver starts as soon as it is connected. --timeout bounds the search
 * (discovery and connecting), never a transfer in progress; without --to the search also
 * ends once discovery has settled (receiver-search.ts). No receiver → 124.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { EventEmitter } from 'node:events';
import { type PeerID } from '../../session/index.js';
import type { ResourceTransfer, SentResource } from '../../session/resource-transfer.js';
import { folderNote } from '../folder-note.js';
import { isHttpSource } from '../../session/resource-source.js';
import { validateResourceName } from '../../session/resource-name.js';
import { Endpoint } from '../../net/index.js';
import { PeerlinkError, isPeerlinkError } from '../../errors.js';
import { jsonLine, parse, parseSeconds, UsageError } from '../args.js';
import { EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_TIMEOUT, type CliIO } from '../io.js';
import { connectEndpoints, connectFlag, newSession, reportWideArea, sessionFlags, sessionOptionsFromFlags, CONNECT_FLAG_HELP, SESSION_FLAGS_HELP } from '../session-flags.js';
import { wireTrust, VERIFY_QUESTION } from '../trust-prompt.js';
import { ConsentPrompt } from '../consent-prompt.js';
import { ProgressRenderer, ProgressThrottle, formatBytes, formatRate, printable } from '../progress.js';
import { ReceiverSearch, QUIET_MS } from '../receiver-search.js';

export const summary = 'send files to the receivers of a session';

const USAGE = `Usage: peerlink send FILE... --service NAME [--to NAME]... [--connect HOST:PORT]... [options]

Sends each FILE (a path, a folder, or an http(s) URL with a Content-Length) to the receivers of
the session NAME (peers running 'peerlink receive --service NAME', and peers given with
--connect). Sending to a receiver starts as soon as it is connected. Exits 0 once every
receiver has confirmed every file, verified by size and SHA-256.

A folder travels as one transfer (one offer, one stream): its tree arrives under the
receiver's directory (as "NAME (1)" if NAME exists), files with their modes (without
setuid/setgid/sticky) and mtimes, each verified by SHA-256. Symlinks and special files
are left out and listed. Folders are not resumed: an interrupted folder is sent again.

A file a receiver already holds part of (an earlier send was interrupted: killed, Ctrl-C,
a lost link) is resumed: the part it holds is checked against FILE block by block (SHA-256)
and only the rest is sent ("resuming NAME at 41 %"). A receiver lost mid-transfer is waited
for, up to 10 minutes, and the transfer continues when it is back.

Stops looking for receivers at --timeout; with --to, as soon as every named receiver is
connected; without --to, once discovery has settled: every receiver found is connected
or has failed and no new one has appeared for ${QUIET_MS / 1000} s. --timeout never cuts a
transfer short.

Options:
  --to NAME            send only to this receiver (display or instance name;
                       repeatable). Default: every receiver found
  --as NAME            send the (one) FILE under this name
  --timeout SECONDS    how long to look for receivers (default 10); none found → exit 124
${CONNECT_FLAG_HELP}
${SESSION_FLAGS_HELP}

Exit status: 0 all confirmed · 1 a transfer failed, was refused, or a receiver found
could not be reached (wrong key, …) · 2 usage · 124 no receiver (or a --to receiver)
found in time · 130 / 143 interrupted (SIGINT / SIGTERM).
`;

const DEFAULT_DISCOVERY_WAIT_S = 10;
/** A rate over less than this is noise (a 12-byte file "at 250 B/s"): not shown. */
const MIN_RATE_SECONDS = 1;

interface Source {
  source: string;
  name: string;
}

/**
 * The consent API adds `savedName` (the name the receiver saved under) to the result, and a
 * 'state' event ('awaitingAcceptance' while the receiver decides) to the transfer; both are
 * read optionally so the command also builds against a library without them.
 */
type SavedResult = SentResource & { savedName?: string };

async function checkSources(files: string[], as: string | undefined): Promise<Source[]> {
  const out: Source[] = [];
  for (const f of files) {
    let name: string;
    if (isHttpSource(f)) {
      const u = new URL(f);
      const segment = u.pathname.split('/').filter(Boolean).pop() ?? '';
      try {
        name = decodeURIComponent(segment) || u.hostname;
      } catch {
        name = segment;
      }
    } else {
      const st = await stat(f).catch((err: NodeJS.ErrnoException) => {
        throw new PeerlinkError('ERR_RESOURCE_SOURCE', err.code === 'ENOENT' ? `${f}: no such file` : `${f}: cannot read (${err.code ?? err.message})`);
      });
      if (!st.isFile() && !st.isDirectory()) throw new PeerlinkError('ERR_RESOURCE_SOURCE', `${f}: not a regular file or a folder`);
      name = basename(f);
    }
    name = as ?? name;
    validateResourceName(name);
    out.push({ source: f, name });
  }
  return out;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...sessionFlags,
    ...connectFlag,
    to: { type: 'string', multiple: true },
    as: { type: 'string' },
    timeout: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('send needs at least one FILE');
  if (values.as !== undefined && positionals.length !== 1) throw new UsageError(`--as names one FILE (got ${positionals.length})`);
  const waitS = parseSeconds('--timeout', values.timeout) ?? DEFAULT_DISCOVERY_WAIT_S;
  const wait = waitS * 1000;
  const json = values.json === true;
  const verbose = values.verbose === true;
  const wanted = new Set(values.to ?? []);
  const endpoints = connectEndpoints(values.connect);
  const options = sessionOptionsFromFlags(values, io, 'send');
  const sources = await checkSources(positionals, values.as);

  // Browse-only: a sender is not a receiver, and nobody needs to find it.
  const session = newSession({ ...options, advertise: false, autoConnect: true, discoveryInfo: { role: 'sender' } }, values, io.env);
  reportWideArea(session, io, values.json === true, values.verbose === true);
  const search = new ReceiverSearch(options.security?.mode ?? 'none', wanted);
  const progress = new ProgressRenderer(io.stderr, io.env);
  const name = (p: PeerID): string => printable(p.displayName);
  const quoted = (s: string): string => `"${printable(s)}"`;
  const started = new Map<string, Promise<boolean>>();
  /** Peers reached through --connect (targets whatever their TXT says: the user named them). */
  const manualPeers = new Set<string>();
  const transfers = new Set<ResourceTransfer<PeerID>>();
  let windowOpen = true;
  let wake: (() => void) | undefined;

  const matched = (): Set<string> => {
    const names = new Set<string>();
    for (const p of session.connectedPeers) {
      if (!started.has(p.id)) continue;
      names.add(p.displayName);
      const inst = session.peerInfo(p)?.instanceName;
      if (inst) names.add(inst);
    }
    return names;
  };
  const missingWanted = (): string[] => {
    const m = matched();
    return [...wanted].filter((w) => !m.has(w));
  };

  async function sendOne(peer: PeerID, src: Source): Promise<boolean> {
    const t = session.sendResource(src.source, src.name, peer);
    transfers.add(t);
    const shown = printable(src.name);
    const throttle = new ProgressThrottle();
    let task: ReturnType<ProgressRenderer['start']> | undefined;
    let bodyStartedAt: number | undefined;
    (t as unknown as EventEmitter).on('state', (state: string) => {
      if (state !== 'awaitingAcceptance') return;
      if (json) jsonLine(io, { event: 'waiting', file: src.name, peer: peer.displayName });
      else progress.log(`waiting for ${name(peer)} to accept ${quoted(src.name)}…`);
    });
    // A receiver holding part of this file (an earlier run was stopped or killed): only the rest is sent.
    (t as unknown as EventEmitter).on('resumed', ({ offset }: { offset: number }) => {
      if (offset <= 0) return;
      const total = t.progress.total;
      const pct = total > 0 ? Math.floor((offset * 100) / total) : 0;
      if (json) jsonLine(io, { event: 'resuming', file: src.name, peer: peer.displayName, offset, total });
      else progress.log(`resuming ${quoted(src.name)} at ${pct} % (${formatBytes(offset)} of ${formatBytes(total)} already at ${name(peer)})`);
    });
    (t as unknown as EventEmitter).on('paused', (err: PeerlinkError) => {
      if (json) jsonLine(io, { event: 'paused', file: src.name, peer: peer.displayName, bytes: t.progress.bytes, code: err.code });
      else progress.log(`lost ${name(peer)} during ${quoted(src.name)}; waiting for it to come back (up to 10 min)…`);
    });
    t.on('progress', (p) => {
      bodyStartedAt ??= Date.now();
      if (json) {
        if (throttle.ready(p)) jsonLine(io, { event: 'progress', file: src.name, peer: peer.displayName, bytes: p.bytes, total: p.total, rate: p.rate });
        return;
      }
      task ??= progress.start(`${shown} → ${name(peer)}`, p.total, `sending ${shown} (${formatBytes(p.total)}) to ${name(peer)}`);
      task.update(p);
    });
    if (json) jsonLine(io, { event: 'sending', file: src.name, peer: peer.displayName });
    try {
      const r: SavedResult = await t.done;
      const secs = (Date.now() - (bodyStartedAt ?? t.startedAt)) / 1000;
      const saved = r.savedName;
      if (json) jsonLine(io, { event: 'sent', file: src.name, peer: peer.displayName, ...(saved !== undefined ? { savedAs: saved } : {}), size: r.size, sha256: r.sha256 });
      else {
        const as = saved !== undefined && saved !== src.name ? ` as ${quoted(saved)}` : '';
        const rate = secs >= MIN_RATE_SECONDS ? `, ${formatRate(r.size / secs)}` : '';
        const msg = `sent ${shown} to ${name(peer)}${as} (${formatBytes(r.size)} in ${secs.toFixed(1)} s${rate}) — SHA-256 verified`;
        if (task) task.finish(true, msg);
        else progress.log(`${progress.paint('green', '✓')} ${msg}`);
        io.stdout.write(`${src.name}\t${peer.displayName}\t${r.size}\tsha256 ${r.sha256}\n`);
      }
      if (r.folder) folderNote(r.folder, (line) => progress.log(line));
      if (r.folder && json) jsonLine(io, { event: 'folder', file: src.name, peer: peer.displayName, files: r.folder.files, dirs: r.folder.dirs, skipped: r.folder.skipped, changed: r.folder.changed });
      return true;
    } catch (err) {
      const code: string = isPeerlinkError(err) ? err.code : 'ERR_INTERNAL';
      const message = code === 'ERR_RESOURCE_REFUSED' ? `${name(peer)} refused ${quoted(src.name)}` : `${shown} to ${name(peer)}: ${(err as Error).message}`;
      if (json) jsonLine(io, { event: 'failed', file: src.name, peer: peer.displayName, code, message: (err as Error).message });
      else if (task) task.finish(false, `${message} (${code})`);
      else progress.log(`${progress.paint('red', '✗')} ${message} (${code})`);
      return false;
    } finally {
      transfers.delete(t);
    }
  }

  async function sendAll(peer: PeerID): Promise<boolean> {
    let ok = true;
    for (const src of sources) {
      if (io.signal.aborted) return false;
      if (!(await sendOne(peer, src))) ok = false;
    }
    return ok;
  }

  /** A connected peer: send to it if it is a receiver we want (or one we dialled by address). */
  function consider(peer: PeerID): void {
    if (started.has(peer.id) || !windowOpen) return;
    const info = session.peerInfo(peer);
    if (info?.state !== 'connected') return;
    const inst = info.instanceName || undefined;
    const isReceiver = info.discoveryInfo.role === 'receiver' || manualPeers.has(peer.id);
    if (!isReceiver) return;
    if (!manualPeers.has(peer.id) && !search.isWanted(peer.displayName, inst)) {
      search.settledWithout(inst);
      return;
    }
    started.set(peer.id, sendAll(peer));
    search.started(inst, peer.id);
    wake?.();
  }

  session.on('found', (info) => {
    const r = search.found(info);
    if (!r) return;
    if (json) jsonLine(io, { event: 'found', peer: info.instanceName, compatible: info.compatible, ...(info.compatible ? {} : { reason: info.incompatibleReason }) });
    else progress.log(`found receiver ${quoted(info.instanceName)}${r.failure ? ` — ${r.failure.message}` : ''}`);
    wake?.();
  });
  session.on('lost', (info) => search.lost(info));
  // First contact (--pki): codes compared on a terminal; without one, --trust-new.
  const keyPrompt = (io.stdin as { isTTY?: boolean }).isTTY === true && options.security?.mode === 'pki' ? new ConsentPrompt(io.stdin, io.stderr) : undefined;
  wireTrust(session, {
    ask: keyPrompt ? (q, signal) => keyPrompt.ask(q, signal, { suffix: VERIFY_QUESTION, withdrawn: '(verification ended)' }) : undefined,
    log: (text) => progress.log(text),
    ...(json ? { json: (obj: Record<string, unknown>) => jsonLine(io, obj) } : {}),
  });
  session.on('peer', (peer, state) => {
    if (json) jsonLine(io, { event: 'peer', peer: peer.displayName, id: peer.id, state });
    else if (verbose) progress.log(`${name(peer)} ${state === 'notConnected' ? 'left' : state}`);
    if (state === 'connected') consider(peer);
  });
  session.on('peerError', (err, info) => {
    if (windowOpen) search.failed(err, info.endpoint);
    if (json) jsonLine(io, { event: 'peerError', peer: info.peer?.displayName, endpoint: info.endpoint, code: err.code, message: err.message });
    else if (verbose) progress.log(`peerlink: ${info.peer ? name(info.peer) : printable(info.endpoint ?? 'a peer')}: ${err.message} (${err.code})`);
    wake?.();
  });
  // Stopped, not cancelled: the receivers keep what they have, so running send again resumes.
  const onAbort = (): void => {
    for (const t of transfers) t.stop();
    wake?.();
  };
  io.signal.addEventListener('abort', onAbort, { once: true });
  const dialAbort = new AbortController();

  let code: number = EXIT_OK;
  let summaryLine: Record<string, unknown> | undefined;
  try {
    await session.start();
    const deadline = Date.now() + wait;
    if (!json) {
      const named = wanted.size ? ` named ${[...wanted].map(quoted).join(', ')}` : '';
      const addrs = endpoints.length ? ` and at ${endpoints.map((e) => Endpoint.format(e)).join(', ')}` : '';
      io.stderr.write(`looking for receivers of _${options.serviceType}._tcp${named}${addrs} (up to ${waitS} s)…\n`);
    }
    for (const ep of endpoints) {
      const address = Endpoint.format(ep);
      search.addManual(address);
      session.connect(ep, { signal: dialAbort.signal }).then(
        (peer) => {
          manualPeers.add(peer.id);
          // The address and the instance its HELLO named are one receiver: a browse result for
          // that instance, before or after this, is not another one to reach (receiver-search.ts).
          search.started(address, peer.id);
          search.started(session.peerInfo(peer)?.instanceName || undefined, peer.id);
          consider(peer);
          if (!started.has(peer.id)) search.settledWithout(address);
        },
        (err: unknown) => {
          if (isPeerlinkError(err) && windowOpen) search.failed(err, address);
          wake?.();
        },
      );
    }
    while (!io.signal.aborted && Date.now() < deadline) {
      if (wanted.size > 0 ? missingWanted().length === 0 : search.settled()) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now())));
      });
    }
    windowOpen = false;
    dialAbort.abort();
    if (Date.now() >= deadline) search.expire(waitS);
    const runs = [...new Set(started.values())];
    const unreachable = search.unreachable();
    for (const r of unreachable) {
      const msg = `could not reach ${r.manual ? r.name : quoted(r.name)}: ${r.failure?.message ?? 'unknown'}`;
      if (json) jsonLine(io, { event: 'unreachable', peer: r.name, code: r.failure?.code ?? 'ERR_TIMEOUT', message: msg });
      else progress.log(`${progress.paint('red', '✗')} ${msg} (${r.failure?.code ?? 'ERR_TIMEOUT'})`);
    }
    const hint = search.keyHint();
    const missing = missingWanted();
    const foundNames = [...search.receivers.values()].filter((r) => !r.manual).map((r) => quoted(r.name));
    const seen = foundNames.length ? `receivers found: ${foundNames.join(', ')}` : 'no receiver was found';
    if (wanted.size && missing.length) {
      report(io, json, 'ERR_TIMEOUT', `receiver ${missing.map(quoted).join(', ')} not found within ${waitS} s; ${seen}`, hint);
    }
    if (io.signal.aborted) code = io.signal.reason === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT;
    else if (runs.length === 0) {
      if (unreachable.length > 0) {
        report(io, json, unreachable[0]?.failure?.code ?? 'ERR_PEER_UNREACHABLE', `found ${unreachable.length === 1 ? 'a receiver' : `${unreachable.length} receivers`} of _${options.serviceType}._tcp but could not reach ${unreachable.length === 1 ? 'it' : 'any'}`, hint);
        code = EXIT_FAILED;
      } else {
        if (!wanted.size) report(io, json, 'ERR_TIMEOUT', `no receiver for service _${options.serviceType}._tcp found within ${waitS} s`, hint ?? `is 'peerlink receive --service ${options.serviceType}' running on this network? check --interface and the key, or give its address with --connect`);
        code = EXIT_TIMEOUT;
      }
    } else {
      if (hint && unreachable.length > 0) io.stderr.write(`${hint}\n`);
      const results = await Promise.all(runs);
      if (io.signal.aborted) code = io.signal.reason === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT;
      else if (results.some((ok) => !ok) || unreachable.length > 0) code = EXIT_FAILED;
      else if (missing.length) code = EXIT_TIMEOUT;
      summaryLine = { event: 'done', receivers: runs.length, unreachable: unreachable.length, ok: code === EXIT_OK };
    }
  } finally {
    dialAbort.abort();
    io.signal.removeEventListener('abort', onAbort);
    keyPrompt?.close();
    progress.close();
    await session.close();
  }
  // Last, after the shutdown's peer events, so a script can stop reading at `done`.
  if (json && summaryLine) jsonLine(io, summaryLine);
  return code;
}

function report(io: CliIO, json: boolean, code: string, message: string, hint?: string): void {
  if (json) jsonLine(io, { event: 'error', code, message: hint ? `${message}; ${hint}` : message });
  io.stderr.write(`peerlink: ${message} (${code})\n${hint ? `${hint}\n` : ''}`);
}
