/**
 * Child processes for tests: every spawned process is tracked so a teardown can kill
 * it, and its output is kept as lines so a test can wait for a particular line
 * (JSON-lines output of `peerlink ... --json`, `avahi-browse -p`, the zeroconf scripts).
 */
import { spawn as nodeSpawn, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';

/** How much of a process's output a failure message quotes. */
const TAIL_LINES = 30;

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Reject when the exit code is not 0 (default true). */
  check?: boolean;
  input?: string;
}

/** Runs a command to completion. Rejects on a non-zero exit unless `check: false`. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      [...args],
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = child.exitCode;
        const signal = child.signalCode;
        const result: ExecResult = { code, signal, stdout, stderr };
        if (err && (opts.check ?? true)) {
          reject(new Error(`${cmd} ${args.join(' ')} failed (code ${String(code)}, signal ${String(signal)}): ${stderr.trim() || err.message}`));
          return;
        }
        resolve(result);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export type LinePredicate = (line: string) => boolean;

/**
 * A spawned child whose stdout and stderr are split into lines and remembered, so a
 * test can ask for a line that may already have arrived.
 */
export class TrackedProcess extends EventEmitter {
  readonly child: ChildProcess;
  readonly label: string;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private hasExited = false;

  constructor(child: ChildProcess, label: string) {
    super();
    this.child = child;
    this.label = label;
    splitLines(child.stdout, (l) => {
      this.stdoutLines.push(l);
      this.emit('line', l);
    });
    splitLines(child.stderr, (l) => {
      this.stderrLines.push(l);
      this.emit('stderrLine', l);
    });
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.stderrLines.push(`[spawn error] ${err.message}`);
        if (!this.hasExited) {
          this.hasExited = true;
          this.emit('exit');
          resolve({ code: null, signal: null });
        }
      });
      // 'close' (not 'exit'): every line has been read by then.
      child.on('close', (code, signal) => {
        if (this.hasExited) return;
        this.hasExited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        this.emit('exit');
        resolve({ code, signal });
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.hasExited;
  }

  /** stdout lines parsed as JSON (lines that are not JSON objects are skipped). */
  json<T = Record<string, unknown>>(): T[] {
    const out: T[] = [];
    for (const l of this.stdoutLines) {
      const v = parseJsonLine<T>(l);
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  /** The last lines of output, for failure messages. */
  tail(): string {
    const o = this.stdoutLines.slice(-TAIL_LINES).map((l) => `  out| ${l}`);
    const e = this.stderrLines.slice(-TAIL_LINES).map((l) => `  err| ${l}`);
    const status = this.hasExited ? `exited code=${String(this.exitCode)} signal=${String(this.exitSignal)}` : 'running';
    return `[${this.label}] (${status})\n${[...o, ...e].join('\n')}`;
  }

  /** Sends a signal if still running; never throws. */
  signal(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.hasExited) {
      try {
        this.child.kill(sig);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 3000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.hasExited) return { code: this.exitCode, signal: this.exitSignal };
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  writeLine(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }
}

function splitLines(stream: NodeJS.ReadableStream | null | undefined, onLine: (l: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl).replace(/\r$/, ''));
      buf = buf.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (buf.length > 0) onLine(buf);
    buf = '';
  });
}

export function parseJsonLine<T = Record<string, unknown>>(line: string): T | undefined {
  const s = line.trim();
  if (!s.startsWith('{')) return undefined;
  try {
    return JSON.parse(s) as T;
  } catch {
    return undefined;
  }
}

const tracked = new Set<TrackedProcess>();

/** The JSON-lines objects in a block of text (lines starting with `{`), e.g. a command's stdout. */
export function jsonLines(s: string): Array<Record<string, unknown>> {
  return s
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface SpawnTrackedOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  label?: string;
  /** Keep stdin open as a pipe (for scripts driven by commands on stdin). */
  stdin?: boolean;
}

/** Spawns a process that `killAllTracked()` (and the exit hook) will stop. */
export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnTrackedOptions = {}): TrackedProcess {
  const so: SpawnOptions = {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  };
  const child = nodeSpawn(cmd, [...args], so);
  const p = new TrackedProcess(child, opts.label ?? [cmd, ...args].join(' ').slice(0, 160));
  tracked.add(p);
  void p.exited.then(() => tracked.delete(p));
  return p;
}

/** Stops every tracked process still running (SIGTERM, then SIGKILL). */
export async function killAllTracked(graceMs = 2000): Promise<void> {
  await Promise.all([...tracked].map((p) => p.stop(graceMs)));
}

process.on('exit', () => {
  for (const p of tracked) p.signal('SIGKILL');
});

export interface WaitOptions {
  /** Only consider lines from this index on (default 0: lines already seen count). */
  since?: number;
  /** Look at stderr instead of stdout. */
  stderr?: boolean;
  /** Extra text for the failure message. */
  what?: string;
}

/**
 * Resolves with the first stdout line (already received or arriving later) that
 * satisfies `predicate`. Rejects after `timeoutMs`, or as soon as the process exits
 * without such a line, quoting the process's output.
 */
export function waitForLine(proc: TrackedProcess, predicate: LinePredicate, timeoutMs: number, opts: WaitOptions = {}): Promise<string> {
  const lines = opts.stderr ? proc.stderrLines : proc.stdoutLines;
  const event = opts.stderr ? 'stderrLine' : 'line';
  for (let i = opts.since ?? 0; i < lines.length; i++) {
    const l = lines[i] as string;
    if (safe(predicate, l)) return Promise.resolve(l);
  }
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.off(event, onLine);
      proc.off('exit', onExit);
    };
    const onLine = (l: string): void => {
      if (safe(predicate, l)) {
        cleanup();
        resolve(l);
      }
    };
    const onExit = (): void => {
      cleanup();
      reject(new Error(`process exited before ${opts.what ?? 'the expected line'} appeared\n${proc.tail()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a line'}\n${proc.tail()}`));
    }, timeoutMs);
    proc.on(event, onLine);
    if (!proc.running) onExit();
    else proc.on('exit', onExit);
  });
}

/** waitForLine for JSON-lines output: the predicate sees parsed objects. */
export async function waitForJson<T = Record<string, unknown>>(
  proc: TrackedProcess,
  predicate: (obj: T) => boolean,
  timeoutMs: number,
  opts: WaitOptions = {},
): Promise<T> {
  const line = await waitForLine(
    proc,
    (l) => {
      const v = parseJsonLine<T>(l);
      return v !== undefined && predicate(v);
    },
    timeoutMs,
    opts,
  );
  return parseJsonLine<T>(line) as T;
}

/**
 * Resolves true if no matching line arrives within `ms` (and none arrived before); a
 * process that exits without printing one counts as "none".
 */
export async function noLineWithin(proc: TrackedProcess, predicate: LinePredicate, ms: number, opts: WaitOptions = {}): Promise<boolean> {
  return waitForLine(proc, predicate, ms, opts).then(
    () => false,
    () => true,
  );
}

function safe(predicate: LinePredicate, line: string): boolean {
  try {
    return predicate(line);
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, what = 'condition', intervalMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}
