/**
 * Printing above a `node:readline` prompt without corrupting what the user is typing, even when the
 * prompt and the half-typed line wrap over several rows: go to the prompt's first row, clear down,
 * print, and let readline redraw the prompt and the line with the cursor where it was.
 *
 * @module
 */
import * as readline from "node:readline";
import type { Writable } from "node:stream";

/** Writes messages to a terminal that may be showing a readline prompt. */
export class TerminalOutput {
  readonly #rl: readline.Interface;
  readonly #output: Writable;
  /** Whether the prompt is on screen (so messages go above it). */
  promptShown = false;

  /**
   * @param rl The readline interface that owns the prompt.
   * @param output The terminal it writes to.
   */
  constructor(rl: readline.Interface, output: Writable) {
    this.#rl = rl;
    this.#output = output;
  }

  /** Shows the prompt (with the current line) and remembers that it is shown. */
  prompt(): void {
    this.promptShown = true;
    this.#rl.prompt(true);
  }

  /**
   * Prints text (one or more lines) above the prompt.
   * @param text The text, without the final newline.
   */
  print(text: string): void {
    if (!this.promptShown) {
      this.#output.write(`${text}\n`);
      return;
    }
    const { rows } = this.#rl.getCursorPos();
    readline.moveCursor(this.#output, 0, -rows);
    readline.cursorTo(this.#output, 0);
    readline.clearScreenDown(this.#output);
    // prompt(true) moves up by the cursor row it remembers, so leave that many rows below the text.
    this.#output.write(`${text}\n${"\n".repeat(rows)}`);
    this.#rl.prompt(true);
  }
}
