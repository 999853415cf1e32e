/**
 * The terminal side of `peerlink chat`: reads the lines typed and writes what arrives.
 *
 * Interactive (stdin and stderr are terminals, no --json): node:readline edits the line on
 * stderr behind a `> ` prompt. Text that arrives while a line is being typed must not land in
 * the middle of it, so every output first erases the prompt and the partial line (however many
 * rows it wraps over), writes the text, then has readline redraw the prompt and the partial
 * line with the cursor where it was.
 *
 * Otherwise (pipes, files, --json) lines are read as they come and output is written as is.
 */
import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface ChatScreenOptions {
  input: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Edit lines with a prompt (see above). */
  interactive: boolean;
  /** Prefix every line written with the local time, `[HH:MM:SS] `. */
  timestamps: boolean;
  /** Clock, for tests. */
  now?: () => Date;
}

const PROMPT = '> ';

/** True when chat should edit lines with a prompt: both ends of the conversation are a terminal. */
export function isInteractive(input: Readable, stderr: Writable): boolean {
  return (input as Readable & { isTTY?: boolean }).isTTY === true && (stderr as Writable & { isTTY?: boolean }).isTTY === true;
}

export function clockStamp(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `[${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}]`;
}

export class ChatScreen {
  readonly interactive: boolean;
  readonly #o: ChatScreenOptions;
  readonly #rl: Interface;
  #closed = false;

  constructor(o: ChatScreenOptions) {
    this.#o = o;
    this.interactive = o.interactive;
    this.#rl = o.interactive
      ? createInterface({ input: o.input, output: o.stderr, terminal: true, prompt: PROMPT, crlfDelay: Infinity })
      : createInterface({ input: o.input, crlfDelay: Infinity, terminal: false });
    if (o.interactive) this.#rl.prompt();
  }

  /** Each line typed (without its end of line). */
  onLine(fn: (line: string) => void): void {
    this.#rl.on('line', (line) => {
      fn(line);
      if (this.interactive && !this.#closed) this.#rl.prompt();
    });
  }

  /**
   * Interactive only: Ctrl-D on an empty line calls `fn`. Ctrl-C, which readline takes in raw
   * mode, is passed on to the process as the SIGINT it would have been, so the command's signal
   * handling applies (the first leaves cleanly, a second forces an immediate exit: CLI.md).
   */
  onLeaveKey(fn: () => void): void {
    if (!this.interactive) return;
    this.#rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
    this.#rl.on('close', fn);
  }

  /** A line on stdout (messages, answers to commands). */
  print(text: string): void {
    this.#write(this.#o.stdout, text);
  }

  /** A line on stderr (joins, leaves, notes). */
  note(text: string): void {
    this.#write(this.#o.stderr, text);
  }

  /** Stops reading; the terminal goes back to its normal mode and the prompt is erased. */
  close(): void {
    if (this.#closed) return;
    if (this.interactive) this.#erasePrompt();
    this.#closed = true;
    this.#rl.close();
  }

  #write(stream: Writable, text: string): void {
    const line = `${this.#o.timestamps ? `${clockStamp((this.#o.now ?? (() => new Date()))())} ` : ''}${text}\n`;
    if (!this.interactive || this.#closed) {
      stream.write(line);
      return;
    }
    this.#erasePrompt();
    stream.write(line);
    this.#rl.prompt(true);
  }

  #erasePrompt(): void {
    const out = this.#o.stderr;
    const rows = this.#rl.getCursorPos().rows;
    if (rows > 0) moveCursor(out, 0, -rows);
    cursorTo(out, 0);
    clearScreenDown(out);
  }
}
