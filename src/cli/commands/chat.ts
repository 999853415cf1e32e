/**
 * `peerlink chat --service NAME` — every line typed is sent to every chat peer of the
 * session; every message received is printed as `[name] text`. Joins and leaves go to stderr.
 * Runs until /quit, SIGINT / SIGTERM, --timeout (exit 0), or Ctrl-C / Ctrl-D on a terminal;
 * stdin reaching its end otherwise does not stop it (`echo hi | peerlink chat …` sends, then
 * keeps listening).
 *
 * Lines typed while nobody is connected are held. When the first chat peer joins, chat waits
 * until no other has joined for HOLD_QUIET_MS (at most HOLD_MAX_MS after the first: peers found
 * by one browse connect within a moment of each other), then sends the held lines, in order,
 * once to each chat peer connected at that moment, and forgets them: a peer joining later does
 * not get them, and no line is ever sent twice to one peer.
 *
 * Chat installs no resource listener, so the session refuses files offered to it.
 */
import { type Invitation, type PeerID } from '../../session/index.js';
import { isPeerlinkError } from '../../errors.js';
import { jsonLine, parse, parseSeconds, UsageError } from '../args.js';
import { EXIT_OK, type CliIO } from '../io.js';
import { connectEndpoints, connectFlag, newSession, reportWideArea, sessionFlags, sessionOptionsFromFlags, CONNECT_FLAG_HELP, SESSION_FLAGS_HELP } from '../session-flags.js';
import { wireTrust, VERIFY_QUESTION } from '../trust-prompt.js';
import { Endpoint } from '../../net/index.js';
import { progressStyle, printable } from '../progress.js';
import { ChatNames } from '../chat-names.js';
import { ChatScreen, isInteractive } from '../chat-screen.js';
import { untilAborted } from './advertise.js';

export const summary = 'chat with every peer of a session';

/** Held lines wait for peers to stop joining for this long… */
export const HOLD_QUIET_MS = 1000;
/** …but no longer than this after the first one joined. */
export const HOLD_MAX_MS = 3000;

/** How long leaving waits for sends still in progress. */
const FLUSH_ON_LEAVE_MS = 2000;

const USAGE = `Usage: peerlink chat --service NAME [--name DISPLAY] [options]

Joins the session NAME: each line you type goes to every connected chat peer,
each message received is printed as "[name] text". Peers with the same name are
shown with a short suffix from their id: "Alice (6f1c)".

Lines typed while nobody is here are held; once peers have joined (and no other
has joined for a second) they are sent once to every peer here, then forgotten:
peers joining later do not get them. Files offered to chat are refused.

Commands (a line starting with "/"; start it with "//" to send a "/" line):
  /who                 list the connected peers, with the measured link to each
  /invite NAME [TEXT]  (--invite) invite the peer advertised as NAME, TEXT shown to it
  /accept [NAME]       (--invite) accept an invitation (the latest, without NAME)
  /decline [NAME]      (--invite) decline an invitation
  /quit                leave (also Ctrl-C, or Ctrl-D on an empty line)
  /help                this list

Options:
  --timestamps         prefix every line shown with the time, [HH:MM:SS]
                       (with --json: a "time" field on every event)
  --timeout SECONDS    leave after this long
  --invite             join nobody unasked: peers found are not dialled, and a
                       peer that connects is an invitation (/accept, /decline);
                       /invite NAME asks a peer to join; --connect invites
${SESSION_FLAGS_HELP}
${CONNECT_FLAG_HELP}
`;

const COMMANDS_HELP = '/who lists the connected peers, /quit leaves, /invite NAME [TEXT], /accept [NAME], /decline [NAME] (with --invite); start a line with // to send a line beginning with /';

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv, { ...sessionFlags, ...connectFlag, timeout: { type: 'string' }, timestamps: { type: 'boolean' }, invite: { type: 'boolean' } });
  if (values.help) {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`chat takes no arguments (got "${positionals[0]}"); type messages on stdin`);
  const endpoints = connectEndpoints(values.connect);
  const timeout = parseSeconds('--timeout', values.timeout);
  const json = values.json === true;
  const timestamps = values.timestamps === true;
  const options = sessionOptionsFromFlags(values, io, 'chat');
  const inviting = values.invite === true;
  const session = newSession({ ...options, autoConnect: !inviting, discoveryInfo: { role: 'chat' } }, values, io.env);
  reportWideArea(session, io, values.json === true, values.verbose === true);
  /** --invite: invitations waiting for /accept or /decline, oldest first. */
  const invitations: Invitation[] = [];
  // No session.on('resource', …): a session nobody listens to for resources refuses them.
  const style = progressStyle(io.stdout, io.env);
  const bold = (s: string): string => (style.color ? `\u001b[1m${s}\u001b[0m` : s);
  const screen = new ChatScreen({ input: io.stdin, stdout: io.stdout, stderr: io.stderr, interactive: !json && isInteractive(io.stdin, io.stderr), timestamps });
  const names = new ChatNames(session.peerId);
  const label = (p: PeerID): string => printable(names.label(p));
  const emit = (event: Record<string, unknown>): void => {
    jsonLine(io, timestamps ? { ...event, time: new Date().toISOString() } : event);
  };

  const leave = new AbortController();
  const onAbort = (): void => leave.abort();
  if (io.signal.aborted) leave.abort();
  else io.signal.addEventListener('abort', onAbort, { once: true });
  let leaving = false;

  // Peers running `receive` are part of the service but are not chatting.
  const isChatPeer = (p: PeerID): boolean => session.peerInfo(p)?.discoveryInfo.role !== 'receiver';
  const chatPeers = (): PeerID[] => session.connectedPeers.filter(isChatPeer);
  /** Peers shown as joined (connected, and told so). */
  const joined = new Set<string>();

  // Every send runs on one chain, so lines go out in the order typed, held ones first.
  let chain: Promise<void> = Promise.resolve();
  const enqueue = (job: () => Promise<void>): void => {
    chain = chain.then(job).catch(() => undefined);
  };

  /** Sends one line to `to`, each peer separately; returns how many peers took it. */
  const sendTo = async (text: string, to: PeerID[]): Promise<number> => {
    const payload = Buffer.from(text, 'utf8');
    // Per peer, so a count is known whatever session.send() resolves with.
    const results = await Promise.allSettled(to.map((p) => session.send(payload, { to: p })));
    let delivered = 0;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        delivered++;
        return;
      }
      const err = r.reason as Error;
      const code = isPeerlinkError(err) ? err.code : 'ERR_INTERNAL';
      const peer = to[i] as PeerID;
      if (json) emit({ event: 'error', code, message: err.message, peer: peer.displayName, id: peer.id });
      else screen.note(`peerlink: not delivered to ${label(peer)}: ${err.message} (${code})`);
    });
    if (delivered > 0 && json) emit({ event: 'sent', text, peers: delivered });
    return delivered;
  };

  const held: string[] = [];
  let settle: NodeJS.Timeout | undefined;
  let firstJoinAt = 0;
  const hold = (text: string, nobodyHere: boolean): void => {
    if (json) emit({ event: 'queued', text });
    else if (nobodyHere && held.length === 0) screen.note('(nobody here yet — what you type will be sent to the peers here when the first one joins)');
    held.push(text);
  };
  const flushHeld = async (): Promise<void> => {
    const to = chatPeers();
    // Everyone left again before the moment came: keep holding until the next join.
    if (to.length === 0 || held.length === 0) return;
    const lines = held.splice(0);
    let reached = 0;
    for (const line of lines) reached = Math.max(reached, await sendTo(line, to));
    if (!json && reached > 0) screen.note(`(sent ${lines.length === 1 ? 'the line' : `${lines.length} lines`} typed while nobody was here to ${to.map(label).join(', ')})`);
  };
  const deliver = async (text: string): Promise<void> => {
    const to = chatPeers();
    // Held lines still waiting (a peer just joined): this one goes after them, with them.
    if (held.length > 0 || to.length === 0) {
      hold(text, to.length === 0);
      return;
    }
    await sendTo(text, to);
  };

  /** The measured link to a peer, for /who: "good, 3 ms". */
  const link = (p: PeerID): string => {
    const q = session.linkQuality(p);
    return q.rttMs === undefined ? `link ${q.quality}` : `${q.quality}, ${q.rttMs < 10 ? q.rttMs.toFixed(1) : Math.round(q.rttMs)} ms`;
  };
  const who = (): void => {
    const peers = chatPeers();
    if (json) {
      emit({
        event: 'who',
        peers: peers.map((p) => {
          const q = session.linkQuality(p);
          return { peer: p.displayName, label: names.label(p), id: p.id, linkQuality: q.quality, ...(q.rttMs !== undefined ? { rttMs: Math.round(q.rttMs * 10) / 10 } : {}) };
        }),
      });
    } else screen.print(peers.length === 0 ? 'nobody else is here' : `here: ${peers.map((p) => `${label(p)} [${link(p)}]`).join(', ')}`);
  };
  const command = (line: string): void => {
    const [name] = line.trim().split(/\s+/, 1);
    switch (name) {
      case '/who':
        who();
        return;
      case '/quit':
        leave.abort();
        return;
      case '/invite':
      case '/accept':
      case '/decline':
        invitationCommand(name, line.trim().slice(name.length).trim());
        return;
      case '/help':
        if (json) emit({ event: 'help', text: COMMANDS_HELP });
        else screen.note(COMMANDS_HELP);
        return;
      default: {
        const message = `unknown command ${printable(name ?? line)} (not sent): ${COMMANDS_HELP}`;
        if (json) emit({ event: 'error', code: 'ERR_INVALID_ARGUMENT', message });
        else screen.note(message);
      }
    }
  };

  // First contact (--pki): the code is shown and the next line typed answers it (y/N).
  const questions: Array<{ answer: (ok: boolean) => void; text: string }> = [];
  const askInChat = (text: string, signal: AbortSignal): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const item = { answer: resolve, text };
      signal.addEventListener('abort', () => {
        const i = questions.indexOf(item);
        if (i < 0) return;
        questions.splice(i, 1);
        screen.note('(verification ended)');
        resolve(false);
        if (i === 0 && questions[0]) screen.note(`${questions[0].text} ${VERIFY_QUESTION}`);
      }, { once: true });
      questions.push(item);
      if (questions.length === 1) screen.note(`${text} ${VERIFY_QUESTION}`);
    });
  wireTrust(session, {
    ask: (io.stdin as { isTTY?: boolean }).isTTY === true ? askInChat : undefined,
    log: (text) => screen.note(text),
    ...(json ? { json: emit } : {}),
  });
  const say = (event: Record<string, unknown>, text: string): void => {
    if (json) emit(event);
    else screen.note(text);
  };
  function invitationCommand(cmd: string, arg: string): void {
    if (!inviting) return say({ event: 'error', code: 'ERR_INVALID_STATE', message: `${cmd} needs --invite` }, `${cmd} needs --invite (without it, chat joins every peer it finds)`);
    if (cmd === '/invite') {
      const [target = '', ...rest] = arg.split(/\s+/);
      const info = session.discoveredPeers.find((d) => d.instanceName === target) ?? session.discoveredPeers.find((d) => d.instanceName.toLowerCase() === target.toLowerCase());
      if (!info) return say({ event: 'error', code: 'ERR_PEER_UNREACHABLE', message: `no peer "${target}" found` }, `no peer "${printable(target)}" found (peers found: ${session.discoveredPeers.map((d) => printable(d.instanceName)).join(', ') || 'none yet'})`);
      say({ event: 'inviting', peer: info.instanceName }, `* inviting ${printable(info.instanceName)}…`);
      const context = rest.join(' ');
      session.invite(info, context ? { context } : {}).catch((err: unknown) => {
        if (leaving || !isPeerlinkError(err)) return;
        say({ event: 'error', peer: info.instanceName, code: err.code, message: err.message }, `* ${printable(info.instanceName)}: ${err.message} (${err.code})`);
      });
      return;
    }
    const i = arg === '' ? invitations.length - 1 : invitations.findIndex((v) => v.peer.displayName === arg || names.label(v.peer) === arg);
    const inv = invitations[i];
    if (!inv) return say({ event: 'error', code: 'ERR_INVALID_ARGUMENT', message: `no invitation${arg ? ` from ${arg}` : ''}` }, `no pending invitation${arg ? ` from ${printable(arg)}` : ''}`);
    invitations.splice(i, 1);
    if (cmd === '/decline') return inv.decline();
    inv.accept().catch(() => undefined);
  }
  session.on('invitation', (inv) => {
    invitations.push(inv);
    const text = inv.context.toString('utf8');
    say(
      { event: 'invitation', peer: inv.peer.displayName, id: inv.peer.id, context: text, invited: inv.invited },
      `* ${label(inv.peer)} ${inv.invited ? 'invites you' : 'wants to join'}${text ? `: "${printable(text)}"` : ''} — /accept or /decline`,
    );
    inv.once('end', (state) => {
      const at = invitations.indexOf(inv);
      if (at >= 0) invitations.splice(at, 1);
      say({ event: 'invitationEnded', peer: inv.peer.displayName, id: inv.peer.id, state }, `* the invitation from ${label(inv.peer)} ${state === 'expired' ? 'expired' : 'was withdrawn'}`);
    });
  });

  screen.onLine((line) => {
    if (leaving) return;
    const question = questions.shift();
    if (question) {
      question.answer(/^\s*y(es)?\s*$/i.test(line));
      if (questions[0]) screen.note(`${questions[0].text} ${VERIFY_QUESTION}`);
      return;
    }
    if (line.length === 0) return;
    if (line.startsWith('/') && !line.startsWith('//')) {
      command(line);
      return;
    }
    const text = line.startsWith('//') ? line.slice(1) : line;
    enqueue(() => deliver(text));
  });
  screen.onLeaveKey(() => leave.abort());

  session.on('peer', (peer, state) => {
    // Our own close() reports every peer as gone; that is us leaving, not them.
    if (leaving) return;
    const renamed = state === 'connected' ? names.add(peer) : [];
    if (json) emit({ event: 'peer', peer: peer.displayName, label: names.label(peer), id: peer.id, state });
    if (state === 'connected') {
      if (!joined.has(peer.id)) {
        joined.add(peer.id);
        if (!json) {
          const also = renamed.map((r) => `${printable(r.from)} is now shown as ${printable(r.to)}`);
          screen.note(`* ${label(peer)} joined${also.length > 0 ? ` (another peer has this name: ${also.join(', ')})` : ''}`);
        }
      }
      if (held.length > 0 && isChatPeer(peer)) {
        const now = Date.now();
        if (settle === undefined) firstJoinAt = now;
        else clearTimeout(settle);
        settle = setTimeout(
          () => {
            settle = undefined;
            enqueue(flushHeld);
          },
          Math.min(HOLD_QUIET_MS, Math.max(0, firstJoinAt + HOLD_MAX_MS - now)),
        );
      }
    } else if (state === 'notConnected' && joined.delete(peer.id) && !json) {
      screen.note(`* ${label(peer)} left`);
    }
  });
  // --json: the measured link to each chat peer as it changes (docs/session.md "Link quality").
  if (json) {
    session.on('linkQuality', (peer, quality, report) => {
      if (leaving || !isChatPeer(peer)) return;
      emit({ event: 'linkQuality', peer: peer.displayName, label: names.label(peer), id: peer.id, quality, ...(report.rttMs !== undefined ? { rttMs: Math.round(report.rttMs * 10) / 10 } : {}) });
    });
  }
  session.on('message', (data, peer) => {
    const text = data.toString('utf8');
    if (json) emit({ event: 'message', peer: peer.displayName, label: names.label(peer), id: peer.id, text });
    else screen.print(`[${bold(label(peer))}] ${printable(text)}`);
  });
  const ourSecurity = options.security?.mode ?? 'none';
  session.on('peerError', (err, info) => {
    if (json) emit({ event: 'peerError', peer: info.peer?.displayName, code: err.code, message: err.message });
    else if (err.code === 'ERR_PSK_MISMATCH') {
      const who = info.peer ? label(info.peer) : `a peer at ${printable(info.endpoint ?? 'an unknown address')}`;
      screen.note(`peerlink: ${who} uses ${ourSecurity === 'psk' ? 'a different key' : 'a key'}; give the same key on both sides (${err.code})`);
    } else screen.note(`peerlink: ${info.peer ? label(info.peer) : (info.endpoint ?? 'a peer')}: ${err.message} (${err.code})`);
  });
  // A key on one side only never even reaches a handshake (no dial between them): say so once
  // per peer, from what its advertisement says (TXT `sec`), so a mismatch is never silent.
  const keyNoted = new Set<string>();
  session.on('found', (info) => {
    const sec = info.txt.sec;
    if (info.compatible || typeof sec !== 'string' || sec === ourSecurity || keyNoted.has(info.instanceName)) return;
    keyNoted.add(info.instanceName);
    const why =
      sec === 'none' ? (ourSecurity === 'pki' ? 'runs without encryption (--insecure), and this chat uses --pki' : 'runs without a key, and this chat has one')
      : sec === 'pki' ? 'uses --pki (keys of its own, the default); run without a shared key and without --insecure to join it'
      : 'uses a key; give the same key with --psk-file F or PEERLINK_PSK';
    if (json) emit({ event: 'incompatible', peer: info.instanceName, security: sec });
    else screen.note(`peerlink: peer "${printable(info.instanceName)}" of this service ${why}`);
  });

  let started = false;
  try {
    await session.start();
    started = true;
    // --connect: the session keeps redialling these until it closes; a security failure is final and said once
    for (const ep of endpoints) {
      (inviting ? session.invite(ep) : session.connect(ep)).catch((err: unknown) => {
        if (leaving || !isPeerlinkError(err)) return;
        if (json) emit({ event: 'error', endpoint: Endpoint.format(ep), code: err.code, message: err.message });
        else screen.note(`peerlink: ${Endpoint.format(ep)}: ${err.message} (${err.code})`);
      });
    }
    if (json) emit({ event: 'ready', service: `_${options.serviceType}._tcp`, name: session.peerId.displayName, id: session.peerId.id });
    else screen.note(`chatting on _${options.serviceType}._tcp as "${printable(session.peerId.displayName)}" — type a line and press Enter; /who lists peers, /quit leaves`);
    await untilAborted(leave.signal, timeout === undefined ? undefined : timeout * 1000);
  } finally {
    leaving = true;
    io.signal.removeEventListener('abort', onAbort);
    if (settle !== undefined) clearTimeout(settle);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([chain, new Promise<void>((r) => (timer = setTimeout(r, FLUSH_ON_LEAVE_MS)))]);
    clearTimeout(timer);
    screen.close();
    await session.close();
    if (started) {
      const unsent = held.length;
      if (json) emit({ event: 'left', name: session.peerId.displayName, id: session.peerId.id, ...(unsent > 0 ? { unsent } : {}) });
      else screen.note(`* you left${unsent > 0 ? ` (${unsent === 1 ? 'a line' : `${unsent} lines`} typed while nobody was here never sent)` : ''}`);
    }
  }
  return EXIT_OK;
}
