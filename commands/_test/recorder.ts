/**
 * Records a client's session as a conversation file (docs/test.md): what was sent (`> LINE`), what
 * the server answered (`< LINE`), the half-close and the server's close, in the order they
 * happened. `linesock test` then replays it against the same server.
 *
 * @module
 */
import { escapeBytes } from "./conversation.ts";

const LF = 0x0a;

/** A session being recorded. */
export class ConversationRecorder {
  readonly #lines: string[];
  #carry: Uint8Array = new Uint8Array(0);

  /** @param target Where the session went (written as a comment). */
  constructor(target: string) {
    this.#lines = [`# recorded by linesock from ${target} on ${new Date().toISOString()}`];
  }

  /** Bytes sent (whole lines or any chunk of them). */
  sent(bytes: Uint8Array): void {
    let data = bytes;
    if (this.#carry.length > 0) {
      data = new Uint8Array(this.#carry.length + bytes.length);
      data.set(this.#carry);
      data.set(bytes, this.#carry.length);
    }
    let start = 0;
    for (let at = data.indexOf(LF); at !== -1; at = data.indexOf(LF, start)) {
      this.#lines.push(`> ${escapeBytes(data.subarray(start, at))}`);
      start = at + 1;
    }
    this.#carry = data.slice(start);
  }

  /** A reply line (without its `\n`). */
  received(line: Uint8Array): void {
    this.#lines.push(`< ${escapeBytes(line)}`);
  }

  /** Our sending side was closed. */
  halfClosed(): void {
    this.#flushCarry();
    this.#lines.push("halfclose");
  }

  /** The server closed the connection. */
  closed(): void {
    this.#lines.push("closed");
  }

  /** The conversation file's text. */
  text(): string {
    this.#flushCarry();
    return this.#lines.join("\n") + "\n";
  }

  #flushCarry(): void {
    if (this.#carry.length === 0) return;
    this.#lines.push(`>raw ${escapeBytes(this.#carry)}`);
    this.#carry = new Uint8Array(0);
  }
}
