/**
 * `peerlink trust list | forget NAME|ID` — the known-peers stores of `--pki` sessions
 * (docs/security.md "Trust"): which peers' keys are trusted, and forgetting one, so that the
 * next contact with it is a first contact again (a code to compare).
 *
 * Without --identity it covers every profile of this user (`identity`, `identity-2`, … under
 * $XDG_CONFIG_HOME/peerlink or ~/.config/peerlink): the terminals of one user use different
 * profiles, and forgetting a peer is meant for all of them.
 */
import { existsSync } from 'node:fs';
import { defaultIdentityBase, profileDir, KnownPeers, type KnownPeer } from '../../session/index.js';
import { MAX_PROFILES } from '../../session/trust/profile.js';
import { escapeForDisplay } from '../../display-text.js';
import { jsonLine, parseCommand, UsageError } from '../args.js';
import { EXIT_FAILED, EXIT_OK, type CliIO } from '../io.js';

export const summary = 'list or forget the peers whose keys --pki sessions trust';

const USAGE = `Usage: peerlink trust list [options]
       peerlink trust forget NAME|ID [options]

list    the known peers: id, display name, key fingerprint, first and last seen
forget  forget the peers with this id (any case) or display name (exact): the next
        contact with them is a first contact again, with a code to compare

Options:
  --identity DIR  only this identity directory (default: every profile of this user
                  under $XDG_CONFIG_HOME/peerlink or ~/.config/peerlink)
  --json          one JSON object per line (list: one per peer; forget: one per peer forgotten)
  -h, --help      this help

Exit status: 0; 1 when forget matched nothing; 2 usage error.
`;

function stores(identity: string | undefined, env: NodeJS.ProcessEnv): Array<{ dir: string; store: KnownPeers }> {
  if (identity !== undefined) return [{ dir: identity, store: KnownPeers.inDirectory(identity) }];
  const base = defaultIdentityBase(env);
  const out: Array<{ dir: string; store: KnownPeers }> = [];
  for (let n = 1; n <= MAX_PROFILES; n++) {
    const dir = profileDir(base, n);
    if (existsSync(dir)) out.push({ dir, store: KnownPeers.inDirectory(dir) });
  }
  return out;
}

function line(k: KnownPeer): string {
  return `${k.id}  ${escapeForDisplay(k.displayName)}  ${k.fingerprint}  first seen ${k.firstSeen}, last seen ${k.lastSeen}`;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const parsed = parseCommand(argv, io, USAGE, { identity: { type: 'string' }, json: { type: 'boolean' } });
  if (!parsed) return EXIT_OK;
  const { values, positionals } = parsed;
  const [action, target, ...rest] = positionals;
  const json = values.json === true;
  const all = stores(values.identity, io.env);
  if (action === 'list') {
    if (target !== undefined) throw new UsageError('trust list takes no arguments');
    let count = 0;
    for (const { dir, store } of all) {
      const peers = store.list();
      if (!json && peers.length > 0 && values.identity === undefined) io.stdout.write(`${dir}:\n`);
      for (const k of peers) {
        count++;
        if (json) jsonLine(io, { ...k, identity: dir });
        else io.stdout.write(`${values.identity === undefined ? '  ' : ''}${line(k)}\n`);
      }
    }
    if (!json && count === 0) io.stderr.write('no known peers\n');
    return EXIT_OK;
  }
  if (action === 'forget') {
    if (target === undefined || target.trim() === '' || rest.length > 0) throw new UsageError('trust forget takes one NAME or ID');
    let count = 0;
    for (const { dir, store } of all) {
      for (const k of store.forget(target)) {
        count++;
        if (json) jsonLine(io, { event: 'forgotten', ...k, identity: dir });
        else io.stdout.write(`forgot ${line(k)} (${dir})\n`);
      }
    }
    if (count === 0) {
      io.stderr.write(`peerlink: no known peer with the id or name "${escapeForDisplay(target)}"\n`);
      return EXIT_FAILED;
    }
    return EXIT_OK;
  }
  throw new UsageError(action === undefined ? 'trust needs an action: list or forget NAME|ID' : `unknown trust action "${action}" (list, forget)`);
}
