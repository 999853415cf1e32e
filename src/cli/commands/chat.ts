/**
 * `peerlink chat --service NAME` — every line typed is sent to every peer of the session;
 * every message received is printed as `[name] text`. Joins and leaves go to stderr.
 * Runs until SIGINT / SIGTERM or --timeout (exit 0); stdin reaching its end does not
 * stop it (`echo hi | peerlink chat …` sends, then keeps listening).
 */
import { createInterface } from 'node:readline';
import { PeerSession, type PeerID } from '../../session/index.js';
import { isPeerlinkError } from '../../errors.js';
import { jsonLine, parse, parseSeconds, UsageError } from '../args.js';
import { EXIT_OK, type CliIO } from '../io.js';
import { sessionFlags, sessionOptionsFromFlags, SESSION_FLAGS_HELP } from '../session-flags.js';
import { progressStyle, printable } from '../progress.js';
import { untilAborted } from './advertise.js';

export const summary = 'chat with every peer of a session';

const USAGE = `Usage: peerlink chat --service NAME [--name DISPLAY] [options]

Joins the session NAME: each line you type goes to every connected peer, each
message received is printed as "[name] text". Lines typed before anyone has
joined are sent to the first peers to connect. Ctrl-C to leave.

Options:
  --timeout SECONDS    leave after this long
${SESSION_FLAGS_HELP}
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv, { ...sessionFlags, timeout: { type: 'string' } });
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`chat takes no arguments (got "${positionals[0]}"); type messages on stdin`);
  const timeout = parseSeconds('--timeout', values.timeout);
  const json = values.json === true;
  const options = sessionOptionsFromFlags(values, io, 'chat');
  const session = new PeerSession({ ...options, autoConnect: true, discoveryInfo: { role: 'chat' } });
  const style = progressStyle(io.stdout, io.env);
  const bold = (s: string): string => (style.color ? `\u001b[1m${s}\u001b[0m` : s);
  const note = (s: string): void => {
    io.stderr.write(`${s}\n`);
  };
  // Peers running `receive` are part of the service but are not chatting.
  const chatPeers = (): PeerID[] => session.connectedPeers.filter((p) => session.peerInfo(p)?.discoveryInfo.role !== 'receiver');
  const pending: string[] = [];

  const deliver = async (text: string): Promise<void> => {
    const to = chatPeers();
    if (to.length === 0) {
      pending.push(text);
      if (!json) note('(nobody here yet — the message will be sent when someone joins)');
      return;
    }
    try {
      await session.send(Buffer.from(text, 'utf8'), { to });
    } catch (err) {
      const code = isPeerlinkError(err) ? err.code : 'ERR_INTERNAL';
      if (json) jsonLine(io, { event: 'error', code, message: (err as Error).message });
      else note(`peerlink: message not delivered to everyone: ${(err as Error).message} (${code})`);
    }
  };

  session.on('peer', (peer, state) => {
    if (json) jsonLine(io, { event: 'peer', peer: peer.displayName, id: peer.id, state });
    else if (state === 'connected') note(`* ${printable(peer.displayName)} joined`);
    else if (state === 'notConnected') note(`* ${printable(peer.displayName)} left`);
    if (state === 'connected' && pending.length > 0 && chatPeers().length > 0) {
      const lines = pending.splice(0);
      void (async () => {
        for (const l of lines) await deliver(l);
      })();
    }
  });
  session.on('message', (data, peer) => {
    const text = data.toString('utf8');
    if (json) jsonLine(io, { event: 'message', peer: peer.displayName, id: peer.id, text });
    else io.stdout.write(`[${bold(printable(peer.displayName))}] ${printable(text)}\n`);
  });
  session.on('peerError', (err, info) => {
    if (json) jsonLine(io, { event: 'peerError', peer: info.peer?.displayName, code: err.code, message: err.message });
    else note(`peerlink: ${info.peer ? printable(info.peer.displayName) : (info.endpoint ?? 'a peer')}: ${err.message} (${err.code})`);
  });

  const rl = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
  let sending = Promise.resolve();
  rl.on('line', (line) => {
    if (line.length === 0) return;
    if (json) jsonLine(io, { event: 'sent', text: line });
    sending = sending.then(() => deliver(line));
  });

  try {
    await session.start();
    if (json) jsonLine(io, { event: 'ready', service: `_${options.serviceType}._tcp`, name: session.peerId.displayName, id: session.peerId.id });
    else note(`chatting on _${options.serviceType}._tcp as "${printable(session.peerId.displayName)}" — type a line and press Enter; Ctrl-C to leave`);
    await untilAborted(io.signal, timeout === undefined ? undefined : timeout * 1000);
  } finally {
    rl.close();
    await sending;
    await session.close();
  }
  return EXIT_OK;
}
