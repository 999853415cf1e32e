/**
 * Progress display for transfers, shared by `send`, `receive` and the demo.
 *
 * On a TTY (stderr): one live bar per transfer — bytes, rate, ETA — redrawn at most ten
 * times a second in place, with colour unless NO_COLOR is set. Without a TTY: a line
 * when a transfer starts and one when it ends, nothing in between (logs stay short).
 * Log lines written through `log()` appear above the bars without tearing them.
 * Machine-readable progress (`--json`) is the caller's business: see `ProgressThrottle`.
 */
import type { Writable } from 'node:stream';
import { escapeForDisplay } from '../display-text.js';

export interface ProgressStyle {
  /** Draw live bars (stderr is a terminal). */
  tty: boolean;
  /** Use ANSI colours (a terminal, and NO_COLOR unset). */
  color: boolean;
  /** Terminal width; bars shrink to fit. */
  columns: number;
  /** Put in front of every bar and final line (the demo indents its steps). */
  indent: string;
}

/** What the environment allows: bars only on a TTY; colours only on a TTY without NO_COLOR. */
export function progressStyle(stream: Writable, env: NodeJS.ProcessEnv): ProgressStyle {
  const s = stream as Writable & { isTTY?: boolean; columns?: number };
  const tty = s.isTTY === true;
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return { tty, color: tty && !noColor && env.TERM !== 'dumb', columns: s.columns && s.columns > 20 ? s.columns : 80, indent: '' };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const ESC = '\u001b[';
const paint = (on: boolean, code: string, s: string): string => (on ? `${ESC}${code}m${s}${ESC}0m` : s);

export interface ProgressSnapshot {
  bytes: number;
  total: number;
  rate: number;
}

export class ProgressTask {
  #snap: ProgressSnapshot;
  readonly startedAt = Date.now();
  #finished = false;

  constructor(
    private readonly renderer: ProgressRenderer,
    readonly label: string,
    total: number,
  ) {
    this.#snap = { bytes: 0, total, rate: 0 };
  }

  get snapshot(): ProgressSnapshot {
    return this.#snap;
  }

  get finished(): boolean {
    return this.#finished;
  }

  update(p: ProgressSnapshot): void {
    this.#snap = p;
    this.renderer.schedule();
  }

  /** Ends the task with a final line (✓ on success, ✗ on failure). */
  finish(ok: boolean, message: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.renderer.finishTask(this, ok, message);
  }
}

export class ProgressRenderer {
  readonly style: ProgressStyle;
  readonly #out: Writable;
  readonly #tasks: ProgressTask[] = [];
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(out: Writable, env: NodeJS.ProcessEnv, style?: Partial<ProgressStyle>) {
    this.#out = out;
    this.style = { ...progressStyle(out, env), ...style };
  }

  /** Starts a bar (TTY) or prints a start line (no TTY). */
  start(label: string, total: number, startLine?: string): ProgressTask {
    const task = new ProgressTask(this, label, total);
    this.#tasks.push(task);
    if (this.style.tty) this.#redraw();
    else if (startLine !== undefined) this.#out.write(`${startLine}\n`);
    return task;
  }

  /** A line of text above the bars. */
  log(line: string): void {
    if (!this.style.tty || this.#tasks.length === 0) {
      this.#out.write(`${line}\n`);
      return;
    }
    this.#clear();
    this.#out.write(`${line}\n`);
    this.#draw();
  }

  /** Colours a fragment when colours are on: 'green' | 'red' | 'dim' | 'bold' | 'cyan' | 'yellow'. */
  paint(color: 'green' | 'red' | 'dim' | 'bold' | 'cyan' | 'yellow', s: string): string {
    const code = { green: '32', red: '31', dim: '2', bold: '1', cyan: '36', yellow: '33' }[color];
    return paint(this.style.color, code, s);
  }

  schedule(): void {
    if (!this.style.tty || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#redraw();
    }, 100);
    this.#timer.unref();
  }

  finishTask(task: ProgressTask, ok: boolean, message: string): void {
    const mark = ok ? this.paint('green', '✓') : this.paint('red', '✗');
    if (this.style.tty) {
      this.#clear();
      this.#tasks.splice(this.#tasks.indexOf(task), 1);
      this.#out.write(`${this.style.indent}${mark} ${message}\n`);
      this.#draw();
    } else {
      this.#tasks.splice(this.#tasks.indexOf(task), 1);
      this.#out.write(`${this.style.indent}${mark} ${message}\n`);
    }
  }

  /** Removes the bars (call before exiting). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.style.tty) this.#clear();
    this.#tasks.length = 0;
  }

  #redraw(): void {
    this.#clear();
    this.#draw();
  }

  #clear(): void {
    if (this.#drawn === 0) return;
    // Up to the first bar line, then clear everything below.
    this.#out.write(`${ESC}${this.#drawn}A\r${ESC}0J`);
    this.#drawn = 0;
  }

  #draw(): void {
    const lines = this.#tasks.map((t) => this.barLine(t));
    if (lines.length === 0) return;
    this.#out.write(`${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }

  /** One bar: `label  [#####-----]  42%  1.2 MiB / 3.0 MiB  5.1 MiB/s  ETA 3s`. */
  barLine(task: ProgressTask): string {
    const { bytes, total, rate } = task.snapshot;
    const frac = total > 0 ? Math.min(1, bytes / total) : 1;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    const eta = rate > 0 && total > bytes ? `ETA ${formatDuration((total - bytes) / rate)}` : bytes >= total ? 'verifying' : 'ETA --';
    const stats = `${pct}  ${formatBytes(bytes)} of ${formatBytes(total)}  ${formatRate(rate)}  ${eta}`;
    const labelWidth = Math.min(Array.from(task.label).length, 24, Math.max(8, Math.floor(this.style.columns / 4)));
    const columns = this.style.columns - this.style.indent.length;
    const label = fit(task.label, labelWidth);
    // A line that wraps would break the in-place redraw: stay one column short of the edge.
    const barWidth = Math.min(40, columns - 1 - labelWidth - 4 - stats.length);
    if (barWidth < 5) return `${this.style.indent}${label}  ${stats}`.slice(0, this.style.columns - 1);
    const filled = Math.round(frac * barWidth);
    const bar = this.paint('green', '█'.repeat(filled)) + this.paint('dim', '░'.repeat(barWidth - filled));
    return `${this.style.indent}${label}  ${bar}  ${stats}`;
  }
}

function fit(s: string, width: number): string {
  const chars = Array.from(s);
  if (chars.length <= width) return s + ' '.repeat(width - chars.length);
  return `${chars.slice(0, width - 1).join('')}…`;
}

/** Lets `--json` progress lines through at most every `intervalMs` per transfer, plus the last one. */
export class ProgressThrottle {
  #last = 0;
  constructor(private readonly intervalMs = 500) {}

  ready(p: ProgressSnapshot): boolean {
    const now = Date.now();
    if (p.bytes >= p.total || now - this.#last >= this.intervalMs) {
      this.#last = now;
      return true;
    }
    return false;
  }
}

/**
 * Makes untrusted text (peer names, messages, file names) safe for a terminal:
 * controls, format characters (zero-width, bidi), line separators become visible
 * escapes (escapeForDisplay); tabs are kept.
 */
export function printable(s: string): string {
  return s.split('\t').map(escapeForDisplay).join('\t');
}
