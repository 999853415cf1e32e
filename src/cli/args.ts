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

type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true; args: string[] }>>['values'];

/** parseArgs with strict checking; any parse problem becomes a UsageError. */
export function parse<O extends Options>(argv: string[], options: O): Parsed<Values<O>> {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values, positionals: r.positionals };
  } catch (err) {
    // Node's messages carry a long hint about '--'; the first sentence is the useful part.
    const text = (err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, '');
    throw new UsageError(text.split(/\. (?=[A-Z])/)[0]?.replace(/\.$/, '') ?? text);
  }
}

/** The options every subcommand takes besides its own. */
const COMMAND_OPTIONS = {
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * A subcommand's `parse`: its own options plus `--verbose` and `-h/--help`. With --help it
 * writes `usage` to stdout and returns undefined; the command then exits with EXIT_OK.
 */
export function parseCommand<O extends Options>(argv: string[], io: CliIO, usage: string, options: O): Parsed<Values<O & typeof COMMAND_OPTIONS>> | undefined {
  const parsed = parse(argv, { ...options, ...COMMAND_OPTIONS });
  if ((parsed.values as { help?: boolean }).help) {
    io.stdout.write(usage);
    return undefined;
  }
  return parsed;
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

export interface ReportOptions {
  verbose?: boolean;
  /** --json: the error also goes to stdout as {"event":"error","code","message"}. */
  json?: boolean;
}

const USAGE_CODES = new Set(['ERR_UNKNOWN_INTERFACE', 'ERR_TSIG_BAD_KEY_FILE', 'ERR_INVALID_ARGUMENT', 'ERR_INVALID_SERVICE_TYPE', 'ERR_INVALID_INSTANCE_NAME', 'ERR_INVALID_HOST_NAME', 'ERR_INVALID_TXT']);

/** Prints an error the CLI.md way and returns the exit status it maps to. */
export function reportError(io: CliIO, err: unknown, options: ReportOptions = {}): number {
  let code: string;
  let message: string;
  let status: number;
  let stack: string | undefined;
  if (err instanceof UsageError) {
    code = 'ERR_INVALID_ARGUMENT';
    message = err.message;
    status = EXIT_USAGE;
  } else if (err instanceof PeerlinkError) {
    code = err.code;
    message = err.message;
    status = USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILED;
    stack = err.stack;
  } else {
    const e = err as Error;
    code = 'ERR_INTERNAL';
    message = e?.message ?? String(err);
    status = EXIT_FAILED;
    stack = e?.stack;
  }
  if (options.json) jsonLine(io, { event: 'error', code, message });
  io.stderr.write(`peerlink: ${message} (${code})\n`);
  if (status === EXIT_USAGE) io.stderr.write("Try 'peerlink --help' for more information.\n");
  if (options.verbose && stack) io.stderr.write(`${stack}\n`);
  return status;
}

/** One JSON object per line, for --json output. */
export function jsonLine(io: CliIO, obj: Record<string, unknown>): void {
  io.stdout.write(`${JSON.stringify(obj)}\n`);
}
