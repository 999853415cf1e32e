/** Runs `node bin/peerlink.js ...` for the cat tests. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../../bin/peerlink.js', import.meta.url));

export interface Proc {
  child: ChildProcessWithoutNullStreams;
  stdout: () => Buffer;
  stderr: () => string;
  exited: Promise<number>;
  /** Resolves with the port a listener printed on stderr. */
  port: () => Promise<number>;
  /** Resolves once stderr matches. */
  waitFor: (re: RegExp) => Promise<RegExpMatchArray>;
}

const live = new Set<ChildProcessWithoutNullStreams>();
/** No test here needs a process for longer than this. */
const PROCESS_LIMIT_MS = 45_000;

/** Kills every process a test left running (call from `after`/`afterEach`), so a failed test cannot hang the file. */
export function killAll(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

/** Polls until `check` is true; fails with `what` after `ms`. */
export async function until(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface SpawnOptions {
  /** stdin from this file (as a shell's `< FILE`), not a pipe: `child.stdin` is then null. */
  stdinFile?: string;
}

export function peerlink(args: string[], env: NodeJS.ProcessEnv = {}, options: SpawnOptions = {}): Proc {
  const fd = options.stdinFile !== undefined ? openSync(options.stdinFile, 'r') : undefined;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, PEERLINK_PSK: '', ...env }, stdio: [fd ?? 'pipe', 'pipe', 'pipe'] }) as ChildProcessWithoutNullStreams;
  if (fd !== undefined) closeSync(fd);
  live.add(child);
  // A hard limit per process: a cat that never exits is killed and its test fails with its stderr.
  const killer = setTimeout(() => {
    err += `\n[test: killed after ${PROCESS_LIMIT_MS / 1000} s without exiting]\n`;
    child.kill('SIGKILL');
  }, PROCESS_LIMIT_MS);
  killer.unref();
  child.on('exit', () => {
    clearTimeout(killer);
    live.delete(child);
  });
  const out: Buffer[] = [];
  let err = '';
  const watchers: Array<() => void> = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
    for (const w of watchers) w();
  });
  // 'close', not 'exit': after 'exit' the child's stdout may still hold data not read here yet.
  const exited = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : signal ? 128 : 1))));
  const waitFor = (re: RegExp): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = re.exec(err);
        if (m) resolve(m);
        return m !== null;
      };
      if (check()) return;
      watchers.push(check);
      void exited.then(() => {
        if (!check()) reject(new Error(`exited before stderr matched ${re}; stderr: ${err}`));
      });
    });
  return {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited,
    waitFor,
    port: async () => Number((await waitFor(/port (\d+)/))[1]),
  };
}
