/**
 * `peerlink` entry point: dispatches to a subcommand, wires SIGINT/SIGTERM to an
 * AbortSignal (a second SIGINT forces an immediate exit), and maps errors to exit codes.
 */
import { readFileSync } from 'node:fs';
import type { CliIO, Command } from './io.js';
import { EXIT_OK, EXIT_USAGE } from './io.js';
import { reportError } from './args.js';

type Loader = () => Promise<{ run: Command; summary: string }>;

const commands: Record<string, Loader> = {
  // Each subcommand lives in ./commands/<name>.ts and exports `run` and `summary`.
  advertise: () => import('./commands/advertise.js'),
  browse: () => import('./commands/browse.js'),
  cat: () => import('./commands/cat.js'),
  chat: () => import('./commands/chat.js'),
  interfaces: () => import('./commands/interfaces.js'),
  receive: () => import('./commands/receive.js'),
  send: () => import('./commands/send.js'),
  trust: () => import('./commands/trust.js'),
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function help(io: CliIO): Promise<void> {
  const lines = ['Usage: peerlink <command> [options]', '', 'Commands:'];
  for (const [name, load] of Object.entries(commands)) {
    const mod = await load();
    lines.push(`  ${name.padEnd(11)} ${mod.summary}`);
  }
  lines.push('', "Run 'peerlink <command> --help' for a command's options.", 'Docs: docs/cli.md');
  io.stdout.write(`${lines.join('\n')}\n`);
}

export function processIO(): CliIO {
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1 && sig === 'SIGINT') process.exit(130);
    if (!ac.signal.aborted) ac.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, signal: ac.signal };
}

export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    await help(io);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`peerlink ${version()}\n`);
    return EXIT_OK;
  }
  const load = commands[name];
  if (!load) {
    io.stderr.write(`peerlink: unknown command "${name}"\nTry 'peerlink --help' for more information.\n`);
    return EXIT_USAGE;
  }
  const mod = await load();
  try {
    return await mod.run(rest, io);
  } catch (err) {
    return reportError(io, err, { verbose: rest.includes('--verbose'), json: rest.includes('--json') });
  }
}
