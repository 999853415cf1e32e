/**
 * `peerlink receive` asking a person whether to accept an incoming offer: one question at
 * a time on stderr, answered with a line on stdin (`y` / `yes` accepts, anything else
 * refuses). Used only when stdin is a terminal; without one, `receive` refuses unless
 * `--yes`. The end of stdin refuses every question still to come.
 */
import { createInterface, type Interface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export class ConsentPrompt {
  readonly #rl: Interface;
  readonly #out: Writable;
  readonly #lines: string[] = [];
  readonly #waiting: Array<(line: string | undefined) => void> = [];
  #ended = false;
  /** Questions are asked one after the other, never interleaved. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(input: Readable, out: Writable) {
    this.#out = out;
    this.#rl = createInterface({ input, crlfDelay: Infinity });
    this.#rl.on('line', (line) => {
      const w = this.#waiting.shift();
      if (w) w(line);
      else this.#lines.push(line);
    });
    this.#rl.on('close', () => {
      this.#ended = true;
      for (const w of this.#waiting.splice(0)) w(undefined);
    });
  }

  /**
   * Shows `question` (the offer, then "Accept? [y/N] ") and resolves with the answer. An
   * aborted `signal` (the offer went away: the sender gave up or left) takes the question
   * down and answers no.
   */
  ask(question: string, signal?: AbortSignal, wording: { suffix?: string; withdrawn?: string } = {}): Promise<boolean> {
    const answer = this.#queue.then(async () => {
      if (signal?.aborted) return false;
      // Lines typed before the question was shown answer nothing.
      this.#lines.length = 0;
      this.#out.write(`${question} ${wording.suffix ?? 'Accept? [y/N] '}`);
      let onAbort: (() => void) | undefined;
      const withdrawn = new Promise<'withdrawn'>((resolve) => {
        onAbort = () => resolve('withdrawn');
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      const reader = this.#nextLine();
      const line = await Promise.race([reader, withdrawn]);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      if (line === 'withdrawn') {
        // the line typed for it, if any, answers nothing else
        this.#dropNext(reader);
        this.#out.write(`${wording.withdrawn ?? '(offer withdrawn)'}\n`);
        return false;
      }
      if (line === undefined) this.#out.write('\n');
      return line !== undefined && /^\s*y(es)?\s*$/i.test(line);
    });
    this.#queue = answer.catch(() => undefined);
    return answer;
  }

  close(): void {
    this.#rl.close();
  }

  /** A pending #nextLine() whose question was withdrawn: take its waiter out, so the next question gets the next line. */
  #dropNext(reader: Promise<string | undefined>): void {
    void reader;
    this.#waiting.pop();
  }

  #nextLine(): Promise<string | undefined> {
    const queued = this.#lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}
