/**
 * How the repl shows things: received lines, lines it sent for the user, its own notices, round-trip
 * times and timestamps. On a colour terminal kinds differ by colour; without colour (`NO_COLOR`, or
 * not a terminal) received lines start with `< `, sent lines with `> `, notices with `* ` or `! `.
 *
 * The text of every shown line may come from the server (a reply, a JSON field, command names, an
 * error quoting it), so control characters in it are shown escaped ({@linkcode escapeControls}:
 * `ESC[2J` shows as `\x1b[2J`) unless {@linkcode RenderSettings.raw} is set.
 *
 * @module
 */
import { escapeControls } from "../../lib/client/_terminal_escape.ts";

const STYLE = {
  received: "\x1b[32m",
  error: "\x1b[31m",
  sent: "\x1b[36m",
  notice: "\x1b[33m",
  dim: "\x1b[2m",
  bold: "\x1b[1m",
  reset: "\x1b[0m",
} as const;

/**
 * A duration for people: `0.42 ms`, `12 ms`, `1.50 s`.
 * @param ms Milliseconds.
 * @returns The text.
 */
export function formatDuration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * Local wall-clock time `HH:MM:SS.mmm`.
 * @param date The time.
 * @returns The text.
 */
export function formatTimestamp(date: Date): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${
    pad(date.getMilliseconds(), 3)
  }`;
}

/** Display settings that the user can change during a session. */
export interface RenderSettings {
  /** Use ANSI colours. */
  color: boolean;
  /** Prefix each shown line with the time. */
  timestamps: boolean;
  /** Append the round-trip time to the first line of each reply. */
  roundTrip: boolean;
  /** Print control characters as they came (`--raw`) instead of escaped. @default {false} */
  raw?: boolean;
}

/** Formats what the repl prints; each method returns text without the final newline. */
export class Renderer {
  /** The current settings (mutable: meta-commands toggle them). */
  readonly settings: RenderSettings;
  /** The clock for timestamps (replaceable in tests). */
  now: () => Date = () => new Date();

  /** @param settings The initial settings. */
  constructor(settings: RenderSettings) {
    this.settings = settings;
  }

  /**
   * A line (or lines) the server sent.
   * @param lines The text.
   * @param options `error` for an error reply; `roundTripMs` when this starts a reply to a request;
   * else `sinceSentMs` (`-v`): the time since the last line sent.
   * @returns The text to print.
   */
  received(
    lines: string[],
    options: { error?: boolean; roundTripMs?: number; sinceSentMs?: number } = {},
  ): string {
    const style = options.error ? STYLE.error : STYLE.received;
    const shown = options.roundTripMs !== undefined
      ? formatDuration(options.roundTripMs)
      : options.sinceSentMs !== undefined
      ? `${formatDuration(options.sinceSentMs)} after the last line sent`
      : undefined;
    const time = shown !== undefined && this.settings.roundTrip
      ? ` ${this.#paint(STYLE.dim, `(${shown})`)}`
      : "";
    return lines.map((line, i) =>
      this.#line("<", style, line) + (i === lines.length - 1 ? time : "")
    ).join("\n");
  }

  /**
   * A line the repl sent that the user did not type as it is (from `:send`, or JSON mode's encoding).
   * @param line The text.
   * @returns The text to print.
   */
  sent(line: string): string {
    return this.#line(">", STYLE.sent, line);
  }

  /**
   * A notice from the repl itself.
   * @param text The message.
   * @param level `info` or `warning` (connection lost, errors).
   * @returns The text to print.
   */
  notice(text: string, level: "info" | "warning" = "info"): string {
    return this.#line(
      level === "info" ? "*" : "!",
      level === "info" ? STYLE.notice : STYLE.error,
      text,
    );
  }

  /**
   * The prompt.
   * @param where The place, e.g. `127.0.0.1:1991`.
   * @param state Extra words such as `json` or `disconnected`.
   * @returns The prompt text (ending in `> `).
   */
  prompt(where: string, state: string[] = []): string {
    const text = [where, ...state].join(" ");
    return `${this.#paint(STYLE.bold, text)}> `;
  }

  #line(marker: string, style: string, raw: string): string {
    const text = this.settings.raw ? raw : escapeControls(raw);
    const stamp = this.settings.timestamps
      ? this.#paint(STYLE.dim, formatTimestamp(this.now())) + " "
      : "";
    return this.settings.color
      ? `${stamp}${this.#paint(style, text)}`
      : `${stamp}${marker} ${text}`;
  }

  #paint(style: string, text: string): string {
    return this.settings.color ? `${style}${text}${STYLE.reset}` : text;
  }
}
