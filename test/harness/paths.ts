/**
 * Where the things tests run live, resolved from this file (compiled to
 * dist/test/harness/paths.js) so a clean clone anywhere works.
 */
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export const REPO_ROOT = repoRoot.replace(/\/$/, '');

/** The `peerlink` command, run as `node <PEERLINK_BIN> ...`. */
export const PEERLINK_BIN = `${REPO_ROOT}/bin/peerlink.js`;

/** A python helper under test/interop/. */
export function interopScript(name: string): string {
  return `${REPO_ROOT}/test/interop/${name}`;
}

/** A compiled node fixture under test/integration/fixtures/ (give the .js name). */
export function fixtureScript(name: string): string {
  return `${REPO_ROOT}/dist/test/integration/fixtures/${name}`;
}

/** Debian's interpreter: its modules (zeroconf) are not those of a `python3` earlier on PATH. */
export const SYSTEM_PYTHON = '/usr/bin/python3';
