/**
 * Argument parsing shared by every subcommand (node:util parseArgs underneath),
 * plus the usage-error and error-printing conventions of ../shared/CLI.md.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PeerlinkError } from '../errors.js';
import type { CliIO } from './io.js';
import { EXIT_FAILED, EXIT_USAGE } from './io.js';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<V> {
  values: V;
  positionals: string[];
}

/** parseArgs with strict checking; any parse problem becomes a UsageError. */
export function parse<O extends Options>(argv: string[], options: O): Parsed<ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true; args: string[] }>>['values']> {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
}

export function parseSeconds(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} expects a number of seconds, got "${value}"`);
  return n;
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`invalid port "${value}" (0-65535)`);
  return n;
}

/** Prints an error the CLI.md way and returns the exit status it maps to. */
export function reportError(io: CliIO, err: unknown, verbose = false): number {
  if (err instanceof UsageError) {
    io.stderr.write(`peerlink: ${err.message}\nTry 'peerlink --help' for more information.\n`);
    return EXIT_USAGE;
  }
  if (err instanceof PeerlinkError) {
    if (err.code === 'ERR_UNKNOWN_INTERFACE' || err.code === 'ERR_INVALID_ARGUMENT' || err.code === 'ERR_INVALID_SERVICE_TYPE' || err.code === 'ERR_INVALID_INSTANCE_NAME' || err.code === 'ERR_INVALID_TXT') {
      io.stderr.write(`peerlink: ${err.message} (${err.code})\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`peerlink: ${err.message} (${err.code})\n`);
    if (verbose && err.stack) io.stderr.write(`${err.stack}\n`);
    return EXIT_FAILED;
  }
  const e = err as Error;
  io.stderr.write(`peerlink: ${e?.message ?? String(err)} (ERR_INTERNAL)\n`);
  if (verbose && e?.stack) io.stderr.write(`${e.stack}\n`);
  return EXIT_FAILED;
}

/** One JSON object per line, for --json output. */
export function jsonLine(io: CliIO, obj: Record<string, unknown>): void {
  io.stdout.write(`${JSON.stringify(obj)}\n`);
}
