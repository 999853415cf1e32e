/**
 * What a CLI command needs from the outside world, so commands can be driven from
 * tests without spawning processes where that is simpler.
 */
import type { Readable, Writable } from 'node:stream';

export interface CliIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT / SIGTERM; `reason` is the signal name. */
  signal: AbortSignal;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_TIMEOUT = 124;
export const EXIT_SIGINT = 130;
export const EXIT_SIGTERM = 143;

export type Command = (argv: string[], io: CliIO) => Promise<number>;
