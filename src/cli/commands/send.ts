/**
 * `peerlink send FILE... --service NAME [--to NAME]` — finds the receivers of the
 * session (peers advertising role=receiver), sends each of them every FILE, and exits
 * 0 once every receiver has confirmed every file (size and SHA-256 verified).
 *
 * Without --to, every receiver found within the discovery wait (--timeout, default
 * 10 s) gets the files; sending to one starts as soon as it is connected. With --to,
 * the wait ends as soon as every named receiver is connected. No receiver → 124.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PeerSession, type PeerID } from '../../session/index.js';
import type { ResourceTransfer } from '../../session/resource-transfer.js';
import { isHttpSource } from '../../session/resource-source.js';
import { validateResourceName } from '../../session/resource-name.js';
import { PeerlinkError, isPeerlinkError } from '../../errors.js';
import { jsonLine, parse, parseSeconds, UsageError } from '../args.js';
import { EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_TIMEOUT, type CliIO } from '../io.js';
import { sessionFlags, sessionOptionsFromFlags, SESSION_FLAGS_HELP } from '../session-flags.js';
import { ProgressRenderer, ProgressThrottle, formatBytes, formatRate, printable } from '../progress.js';

export const summary = 'send files to the receivers of a session';

const USAGE = `Usage: peerlink send FILE... --service NAME [--to NAME]... [options]

Sends each FILE (a path, or an http(s) URL with a Content-Length) to the receivers of
the session NAME (peers running 'peerlink receive --service NAME'). Exits 0 once every
receiver has confirmed every file, verified by size and SHA-256.

Options:
  --to NAME            send only to this receiver (display or instance name;
                       repeatable). Default: every receiver found within --timeout
  --timeout SECONDS    how long to look for receivers (default 10); none found → exit 124
${SESSION_FLAGS_HELP}

Exit status: 0 all confirmed · 1 a transfer failed · 2 usage · 124 no receiver found in
time · 130 / 143 interrupted (SIGINT / SIGTERM).
`;

const DEFAULT_DISCOVERY_WAIT_S = 10;
/** A receiver found just before the wait ends gets this long to finish connecting. */
const CONNECT_GRACE_MS = 5000;

interface Source {
  source: string;
  name: string;
}

async function checkSources(files: string[]): Promise<Source[]> {
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
      if (!st.isFile()) throw new PeerlinkError('ERR_RESOURCE_SOURCE', `${f}: not a regular file`);
      name = basename(f);
    }
    validateResourceName(name);
    out.push({ source: f, name });
  }
  return out;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...sessionFlags,
    to: { type: 'string', multiple: true },
    timeout: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError('send needs at least one FILE');
  const wait = (parseSeconds('--timeout', values.timeout) ?? DEFAULT_DISCOVERY_WAIT_S) * 1000;
  const json = values.json === true;
  const wanted = new Set(values.to ?? []);
  const options = sessionOptionsFromFlags(values, io, 'send');
  const sources = await checkSources(positionals);

  // Browse-only: a sender is not a receiver, and nobody needs to find it.
  const session = new PeerSession({ ...options, advertise: false, autoConnect: true, discoveryInfo: { role: 'sender' } });
  const progress = new ProgressRenderer(io.stderr, io.env);
  const name = (p: PeerID): string => printable(p.displayName);
  const started = new Map<string, Promise<boolean>>();
  const transfers = new Set<ResourceTransfer<PeerID>>();
  const foundReceivers = new Set<string>();
  const securityErrors: PeerlinkError[] = [];
  let windowOpen = true;
  let wake: (() => void) | undefined;

  const isTarget = (peer: PeerID): boolean => {
    const info = session.peerInfo(peer);
    if (info?.discoveryInfo.role !== 'receiver') return false;
    return wanted.size === 0 || wanted.has(peer.displayName) || wanted.has(info.instanceName);
  };
  const allWantedStarted = (): boolean => wanted.size > 0 && [...wanted].every((w) => [...started.keys()].some((k) => k === w));

  async function sendAll(peer: PeerID): Promise<boolean> {
    let ok = true;
    for (const src of sources) {
      if (io.signal.aborted) return false;
      const t = session.sendResource(src.source, src.name, peer);
      transfers.add(t);
      const shown = printable(src.name);
      const throttle = new ProgressThrottle();
      let task: ReturnType<ProgressRenderer['start']> | undefined;
      t.on('progress', (p) => {
        if (json) {
          if (throttle.ready(p)) jsonLine(io, { event: 'progress', file: src.name, peer: peer.displayName, bytes: p.bytes, total: p.total, rate: p.rate });
          return;
        }
        task ??= progress.start(`${shown} → ${name(peer)}`, p.total, `sending ${shown} (${formatBytes(p.total)}) to ${name(peer)}`);
        task.update(p);
      });
      if (json) jsonLine(io, { event: 'sending', file: src.name, peer: peer.displayName });
      try {
        const r = await t.done;
        const secs = (Date.now() - t.startedAt) / 1000;
        if (json) jsonLine(io, { event: 'sent', file: src.name, peer: peer.displayName, size: r.size, sha256: r.sha256 });
        else {
          const msg = `sent ${shown} to ${name(peer)} (${formatBytes(r.size)} in ${secs.toFixed(1)} s, ${formatRate(secs > 0 ? r.size / secs : r.size)}) — SHA-256 verified`;
          if (task) task.finish(true, msg);
          else progress.log(msg);
          io.stdout.write(`${src.name}\t${peer.displayName}\t${r.size}\tsha256 ${r.sha256}\n`);
        }
      } catch (err) {
        ok = false;
        const code = isPeerlinkError(err) ? err.code : 'ERR_INTERNAL';
        const message = (err as Error).message;
        if (json) jsonLine(io, { event: 'failed', file: src.name, peer: peer.displayName, code, message });
        else if (task) task.finish(false, `${shown} to ${name(peer)}: ${message} (${code})`);
        else progress.log(`peerlink: ${shown} to ${name(peer)}: ${message} (${code})`);
      } finally {
        transfers.delete(t);
      }
    }
    return ok;
  }

  session.on('found', (info) => {
    if (info.discoveryInfo.role === 'receiver' && info.compatible) foundReceivers.add(info.instanceName);
  });
  session.on('peer', (peer, state) => {
    if (json) jsonLine(io, { event: 'peer', peer: peer.displayName, id: peer.id, state });
    else if (values.verbose) progress.log(`${name(peer)} ${state}`);
    if (state !== 'connected' || started.has(peer.id) || !windowOpen || !isTarget(peer)) return;
    started.set(peer.id, sendAll(peer));
    const inst = session.peerInfo(peer)?.instanceName;
    if (inst) foundReceivers.delete(inst);
    if (wanted.has(peer.displayName)) started.set(peer.displayName, started.get(peer.id)!);
    if (inst && wanted.has(inst)) started.set(inst, started.get(peer.id)!);
    wake?.();
  });
  session.on('peerError', (err, info) => {
    if (isPeerlinkError(err) && /PSK|TLS|CERT/.test(err.code)) securityErrors.push(err);
    if (json) jsonLine(io, { event: 'peerError', peer: info.peer?.displayName, code: err.code, message: err.message });
    else if (values.verbose) progress.log(`peerlink: ${info.peer ? name(info.peer) : (info.endpoint ?? 'a peer')}: ${err.message} (${err.code})`);
  });
  const onAbort = (): void => {
    for (const t of transfers) t.cancel();
    wake?.();
  };
  io.signal.addEventListener('abort', onAbort, { once: true });

  let code: number = EXIT_OK;
  let summaryLine: Record<string, unknown> | undefined;
  try {
    await session.start();
    if (!json) io.stderr.write(`looking for receivers of _${options.serviceType}._tcp${wanted.size ? ` named ${[...wanted].map((w) => `"${printable(w)}"`).join(', ')}` : ''} (up to ${wait / 1000} s)…\n`);
    const deadline = Date.now() + wait;
    while (!io.signal.aborted && Date.now() < deadline && !allWantedStarted()) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(250, Math.max(0, deadline - Date.now())));
      });
    }
    // Receivers found but still connecting get a moment more.
    const graceEnd = Date.now() + CONNECT_GRACE_MS;
    while (!io.signal.aborted && foundReceivers.size > 0 && started.size === 0 && securityErrors.length === 0 && Date.now() < graceEnd)
      await new Promise((r) => setTimeout(r, 100));
    windowOpen = false;
    const runs = [...new Set(started.values())];
    if (io.signal.aborted) code = io.signal.reason === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT;
    else if (runs.length === 0) {
      const why = securityErrors[0];
      const missingNames = [...wanted].filter((w) => !started.has(w));
      if (why) {
        report(io, json, why.code, `found a receiver but could not connect: ${why.message}`, 'check that both sides use the same key (--psk-file / PEERLINK_PSK)');
        code = EXIT_FAILED;
      } else {
        const what = wanted.size ? `receiver ${missingNames.map((w) => `"${printable(w)}"`).join(', ')}` : 'receiver';
        report(io, json, 'ERR_TIMEOUT', `no ${what} for service _${options.serviceType}._tcp found within ${wait / 1000} s`, `is 'peerlink receive --service ${options.serviceType}' running on this network? check --interface and the key`);
        code = EXIT_TIMEOUT;
      }
    } else {
      if (wanted.size && !allWantedStarted()) {
        const missingNames = [...wanted].filter((w) => !started.has(w));
        report(io, json, 'ERR_TIMEOUT', `receiver ${missingNames.map((w) => `"${printable(w)}"`).join(', ')} not found within ${wait / 1000} s`);
      }
      const results = await Promise.all(runs);
      if (io.signal.aborted) code = io.signal.reason === 'SIGTERM' ? EXIT_SIGTERM : EXIT_SIGINT;
      else if (results.some((ok) => !ok)) code = EXIT_FAILED;
      else if (wanted.size && !allWantedStarted()) code = EXIT_TIMEOUT;
      summaryLine = { event: 'done', receivers: runs.length, ok: code === EXIT_OK };
    }
  } finally {
    io.signal.removeEventListener('abort', onAbort);
    progress.close();
    await session.close();
  }
  // Last, after the shutdown's peer events, so a script can stop reading at `done`.
  if (json && summaryLine) jsonLine(io, summaryLine);
  return code;
}

function report(io: CliIO, json: boolean, code: string, message: string, hint?: string): void {
  if (json) jsonLine(io, { event: 'error', code, message });
  io.stderr.write(`peerlink: ${message} (${code})\n${hint ? `${hint}\n` : ''}`);
}
