/**
 * The interactive repl session: a `node:readline` prompt with history and completion, a socket that is
 * read all the time (replies show up the moment they arrive, above the line being typed), meta-commands,
 * JSON mode, round-trip times, and reconnection with backoff when the connection is lost.
 *
 * The conversation itself — error replies, JSON responses, which request a reply answers — is the
 * client's conversation engine (lib/client/conversation.ts), the same as `send`'s. A reply shows a
 * round-trip time only when the engine knows which request it answers ({@linkcode textExpectation}
 * and {@linkcode jsonExpectation} say what the repl knows), and none rather than a wrong one
 * otherwise.
 *
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import type { ConnectOptions, LineConnection } from "../../lib/client/client.ts";
import {
  classifyReply,
  Conversation,
  type Expectation,
  isErrorReply,
  type Reply,
  type SentLine,
} from "../../lib/client/conversation.ts";
import { ConnectionLostError, LineTooLongError } from "../../lib/errors.ts";
import { describeDisconnect } from "../../lib/_disconnect.ts";
import { commandsFromHelpReply, commandsFromJsonHelp, completeLine } from "./completion.ts";
import { type HistoryStore, isRecordable } from "./history_store.ts";
import { describeResponse, encodeJsonRequest, JsonInputError } from "./json_request.ts";
import { isUnknownCommandAnswer, jsonExpectation, textExpectation } from "./reply_count.ts";
import { metaHelp, parseInput, parseToggle } from "./meta_command.ts";
import { Renderer, type RenderSettings } from "./render.ts";
import { TerminalOutput } from "./terminal_output.ts";
import { connectMaybeDescribed } from "./connection_details.ts";
import { NORMAL, TRACE, VERBOSE } from "../_verbosity.ts";

/** Options of {@linkcode runInteractive}. */
export interface InteractiveOptions {
  /** Where to connect. */
  connect: ConnectOptions;
  /** The place shown in the prompt, e.g. `127.0.0.1:1991`. */
  where: string;
  /** Start in JSON mode. */
  json: boolean;
  /** Colour, timestamps, round-trip times. */
  render: RenderSettings;
  /** Reconnect automatically when the connection is lost. */
  reconnect: boolean;
  /** Ask the server for its commands (`HELP`) on connect, for Tab completion. */
  probe: boolean;
  /**
   * Lines each new connection receives before it sends (`--greeting-lines`): shown, but credited
   * to no line (no round-trip time, not the probe's reply). @default {0}
   */
  greetingLines?: number;
  /** The history store (already loaded). */
  history: HistoryStore;
  /** Records what is sent and received (`--record`). */
  record?: { sent(bytes: Uint8Array): void; received(line: Uint8Array): void } | undefined;
  /**
   * How much to say (commands/_verbosity.ts): `-q` leaves out the repl's own information notices
   * (warnings stay); `-v` adds the connection's details and a time on every reply; `-vv` also the
   * `HELP` probe's traffic and every failed reconnection. @default {0}
   */
  verbosity?: number;
  /** `-v`: the first connection's details (commands/_repl/connection_details.ts). */
  details?: string | undefined;
}

/** The id of the JSON `help` request sent on connect; its response is not shown. */
export const PROBE_ID = "linesock-repl-help";
const PROBE_TIMEOUT_MS = 3000;
const FIRST_RECONNECT_DELAY_MS = 250;
const MAX_RECONNECT_DELAY_MS = 5000;
/** The longest connect attempt when reconnecting, so that the backoff goes on. */
const MAX_RECONNECT_CONNECT_MS = 5000;

/**
 * The delay before reconnection attempt `attempt` (1-based): doubling from 250 ms up to 5 s.
 * @param attempt The attempt number.
 * @returns Milliseconds.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(FIRST_RECONNECT_DELAY_MS * 2 ** Math.max(0, attempt - 1), MAX_RECONNECT_DELAY_MS);
}

/** The built-in names Tab completes before the server said anything. */
/** Why a connection ended when the server closed it without an error. */
const CLOSED_BY_SERVER = "closed by the server";
const BUILT_IN_COMMANDS = { text: ["HELP"], json: ["help"] } as const;

/** What the repl keeps about each line it sent. */
interface LineInfo {
  /** The line as sent. */
  line: string;
  /** The `HELP` probe (its reply is not the user's, and shows no time). */
  probe: boolean;
}

interface Probe {
  mode: "text" | "json";
  /** Whether the user sent a line after the probe (then an error reply may be theirs). */
  userSent: boolean;
  timer: ReturnType<typeof setTimeout>;
  /** The probe line in the conversation. */
  request: SentLine<LineInfo>;
}

/**
 * Why a connection was lost, in a few words ("connection reset", "broken pipe").
 * @param error What a read or write threw.
 * @returns The words.
 */
function lostReason(error: unknown): string {
  return describeDisconnect(
    error instanceof ConnectionLostError && error.cause !== undefined ? error.cause : error,
  );
}

/**
 * Runs the interactive session on the process's terminal; the first connection is already open.
 * @param first The open connection.
 * @param options Display, history and connection settings.
 * @returns The exit status (0 after `:quit`, Ctrl-D or a second Ctrl-C).
 */
export function runInteractive(
  first: LineConnection,
  options: InteractiveOptions,
): Promise<number> {
  return new InteractiveSession(first, options).done;
}

class InteractiveSession {
  readonly done: Promise<number>;
  readonly #options: InteractiveOptions;
  readonly #renderer: Renderer;
  readonly #rl: readline.Interface;
  readonly #out: TerminalOutput;
  #finish!: (code: number) => void;
  #conversation: Conversation<LineInfo> | undefined;
  #generation = 0;
  #json: boolean;
  #commands = new Set<string>();
  #probe: Probe | undefined;
  #nextId = 1;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectAttempt = 0;
  #lastFailure = "";
  /** Lines the user sent on the current connection. */
  #userLines = 0;
  /** Connections in a row that the server closed before the user sent anything on them. */
  #idleCloses = 0;
  /** Lines typed while parked (see #lost), sent once the connection is back. */
  #pending: string[] | undefined;
  #connecting = false;
  #interruptArmed = false;
  #closing = false;
  readonly #verbosity: number;
  /** When the user's last line went out (`-v`: the time of replies whose request is unknown). */
  #lastSentAt: number | undefined;
  /** Greeting lines the current connection has still to receive. */
  #greetingLeft = 0;

  constructor(first: LineConnection, options: InteractiveOptions) {
    this.#options = options;
    this.#verbosity = options.verbosity ?? NORMAL;
    this.#json = options.json;
    this.#renderer = new Renderer(options.render);
    this.done = new Promise((resolve) => this.#finish = resolve);
    // Set before the prompt is built, so it does not say "disconnected".
    this.#conversation = new Conversation<LineInfo>(first, { json: this.#json });
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      prompt: this.#promptText(),
      history: options.history.newestFirst(),
      historySize: options.history.maxEntries,
      removeHistoryDuplicates: true,
      completer: (line: string) => completeLine(line, [...this.#commands]),
    });
    this.#out = new TerminalOutput(this.#rl, process.stdout);
    this.#rl.on("line", (line) => this.#onLine(line));
    this.#rl.on("SIGINT", () => this.#onInterrupt());
    this.#rl.on("close", () => this.#quit());
    // Any key other than Ctrl-C disarms the "Ctrl-C again quits" state.
    process.stdin.on("keypress", this.#onKeypress);
    this.#inform(`connected to ${options.where}; :help for help, Ctrl-D to quit`);
    if (options.details !== undefined) this.#print(this.#renderer.notice(options.details));
    this.#attach(first);
    this.#out.prompt();
  }

  get #conn(): LineConnection | undefined {
    return this.#conversation?.connection;
  }

  #promptText(): string {
    const state: string[] = [];
    if (this.#json) state.push("json");
    if (!this.#conn) state.push("disconnected");
    return this.#renderer.prompt(this.#options.where, state);
  }

  #refreshPrompt(): void {
    this.#rl.setPrompt(this.#promptText());
    if (this.#out.promptShown && !this.#closing) this.#out.prompt();
  }

  #print(text: string): void {
    if (!this.#closing) this.#out.print(text);
  }

  /** A notice the repl volunteers (not an answer to a meta-command, not a warning): not with -q. */
  #inform(text: string): void {
    if (this.#verbosity >= NORMAL) this.#print(this.#renderer.notice(text));
  }

  // --- connection -------------------------------------------------------------------------------

  #attach(conn: LineConnection): void {
    // A new connection is a new conversation: nothing sent before is waited for.
    const conversation = this.#conversation?.connection === conn
      ? this.#conversation
      : new Conversation<LineInfo>(conn, { json: this.#json });
    this.#conversation = conversation;
    const generation = ++this.#generation;
    this.#reconnectAttempt = 0;
    this.#lastFailure = "";
    this.#userLines = 0;
    this.#greetingLeft = this.#options.greetingLines ?? 0;
    if (this.#options.probe) this.#sendProbe();
    this.#readLoop(conversation, generation);
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending?.length) this.#sendLines(pending, false);
  }

  async #readLoop(conversation: Conversation<LineInfo>, generation: number): Promise<void> {
    let reason = CLOSED_BY_SERVER;
    try {
      for (;;) {
        // Text with replacement characters instead of an error: the user should see what arrived.
        const reply = await conversation.read();
        if (reply === null) break;
        if (generation !== this.#generation) return;
        this.#onReply(conversation, reply);
      }
    } catch (error) {
      reason = lostReason(error);
    }
    if (generation === this.#generation) this.#lost(reason);
  }

  #lost(reason: string): void {
    const idle = reason === CLOSED_BY_SERVER && this.#userLines === 0;
    this.#idleCloses = idle ? this.#idleCloses + 1 : 0;
    this.#detach();
    if (this.#closing) return;
    this.#print(
      this.#renderer.notice(`connection to ${this.#options.where} lost: ${reason}`, "warning"),
    );
    if (this.#options.reconnect && this.#idleCloses >= 2) {
      // A server that closes idle connections (--idle-timeout) would otherwise be reconnected to
      // forever, a few lines each time: wait for the user instead, and say why once.
      this.#pending = [];
      if (this.#idleCloses === 2) {
        this.#inform(
          "the server closed the connection again before anything was sent: it closes idle " +
            "connections; reconnecting when you send a line (:reconnect to try now)",
        );
      }
    } else if (this.#options.reconnect) {
      this.#inform("reconnecting… (:quit to leave; your history is kept)");
      this.#scheduleReconnect();
    } else {
      this.#inform(":reconnect to connect again, :quit to leave");
    }
    this.#refreshPrompt();
  }

  #detach(): void {
    this.#generation++;
    this.#conn?.close();
    this.#conversation = undefined;
    this.#endProbe();
  }

  #scheduleReconnect(): void {
    clearTimeout(this.#reconnectTimer);
    const delay = reconnectDelay(++this.#reconnectAttempt);
    this.#reconnectTimer = setTimeout(() => this.#tryConnect(false), delay);
  }

  async #tryConnect(manual: boolean): Promise<void> {
    if (this.#connecting || this.#closing) return;
    clearTimeout(this.#reconnectTimer);
    this.#connecting = true;
    try {
      // Each attempt is bounded even when --connect-timeout is 0 (no limit), so the backoff goes on.
      const limit = this.#options.connect.connectTimeoutMs ?? MAX_RECONNECT_CONNECT_MS;
      const { connection: conn, details } = await connectMaybeDescribed({
        ...this.#options.connect,
        connectTimeoutMs: limit > 0
          ? Math.min(limit, MAX_RECONNECT_CONNECT_MS)
          : MAX_RECONNECT_CONNECT_MS,
        retries: 0,
      }, this.#verbosity >= VERBOSE);
      if (this.#closing) {
        conn.close();
        return;
      }
      this.#inform(`${manual ? "connected" : "reconnected"} to ${this.#options.where}`);
      if (details !== undefined) this.#print(this.#renderer.notice(details));
      this.#attach(conn);
      this.#refreshPrompt();
    } catch (error) {
      if (this.#closing) return;
      const message = error instanceof Error ? error.message : String(error);
      // Repeating the same failure every few seconds would bury the screen; say it when it changes
      // (-vv: every time).
      if (manual || message !== this.#lastFailure || this.#verbosity >= TRACE) {
        this.#print(this.#renderer.notice(message, "warning"));
      }
      this.#lastFailure = message;
      if (this.#pending) {
        // Parked: the lines typed were for a server that is not there; keep waiting for the user.
        if (this.#pending.length) this.#print(this.#renderer.notice("nothing sent", "warning"));
        this.#pending = [];
        return;
      }
      if (this.#options.reconnect) this.#scheduleReconnect();
    } finally {
      this.#connecting = false;
    }
  }

  // --- probe for command names ------------------------------------------------------------------

  #sendProbe(): void {
    this.#endProbe();
    const conversation = this.#conversation;
    if (!conversation) return;
    const mode = this.#json ? "json" : "text";
    for (const name of BUILT_IN_COMMANDS[mode]) this.#commands.add(name);
    const line = mode === "json"
      ? JSON.stringify({ command: "help", args: {}, id: PROBE_ID })
      : "HELP";
    // The text probe's reply count is left unknown, not the one of a built-in: a server that never
    // answers HELP must not have the next reply credited to it. Its reply, recognised by content,
    // settles it.
    const expectation: Expectation = mode === "json" ? { id: PROBE_ID } : "unknown";
    this.#probe = {
      mode,
      userSent: false,
      // A server that never answers HELP must not hold back what comes after.
      timer: setTimeout(() => this.#endProbe(), PROBE_TIMEOUT_MS),
      request: conversation.enqueue(line, expectation, { line, probe: true }),
    };
    if (this.#verbosity >= TRACE) {
      this.#print(this.#renderer.notice(`probe for command names (Tab completion): > ${line}`));
    }
    conversation.flush().catch(() => {});
  }

  #endProbe(): void {
    if (this.#probe) clearTimeout(this.#probe.timer);
    this.#probe = undefined;
  }

  /** Whether `reply` answers the probe (then it is not shown); the probe then ends. */
  #consumeProbe(conversation: Conversation<LineInfo>, reply: Reply): boolean {
    const probe = this.#probe;
    if (!probe) return false;
    if (probe.mode === "text") {
      const names = commandsFromHelpReply(reply.text);
      // An error reply (a server without HELP) or an echo, before the user sent anything.
      const answered = names !== undefined ||
        (!probe.userSent && (isErrorReply(reply.text) || reply.text === "HELP"));
      if (!answered) return false;
      for (const name of names ?? []) this.#commands.add(name);
    } else {
      // JSON mode may have been switched off since: read the reply as JSON all the same.
      const { response, error } = conversation.json ? reply : classifyReply(reply.text, true);
      const id = response?.id;
      if (id === PROBE_ID) {
        if (response && !error) {
          for (const name of commandsFromJsonHelp(response.message)) this.#commands.add(name);
        }
      } else if (probe.userSent || id !== undefined || !error) {
        return false;
      }
    }
    conversation.credit(reply, probe.request);
    this.#endProbe();
    if (this.#verbosity >= TRACE) {
      this.#print(this.#renderer.notice(`probe reply (not shown otherwise): < ${reply.text}`));
    }
    return true;
  }

  // --- replies ----------------------------------------------------------------------------------

  #onReply(conversation: Conversation<LineInfo>, reply: Reply): void {
    if (reply.error instanceof LineTooLongError) {
      // Still one of the replies: counting it keeps the next ones credited right.
      conversation.credit(reply);
      this.#print(
        this.#renderer.notice(
          `a reply was too long and was cut: ${reply.error.message}`,
          "warning",
        ),
      );
      return;
    }
    if (this.#greetingLeft > 0) {
      // The server's first lines answer nothing sent: shown, credited to no line.
      this.#greetingLeft--;
      this.#options.record?.received(reply.bytes);
      this.#print(this.#renderer.received([reply.text], { error: false }));
      return;
    }
    if (this.#consumeProbe(conversation, reply)) return;
    this.#options.record?.received(reply.bytes);
    // The text protocol's answer to a command it does not know is that line's only reply.
    const oldest = conversation.ledger.oldest;
    const countKnown = oldest !== undefined && typeof oldest.expectation === "object" &&
      "replies" in oldest.expectation;
    const claimedBy = oldest !== undefined && !countKnown &&
        isUnknownCommandAnswer(oldest.data.line, reply.text)
      ? oldest
      : undefined;
    const credit = conversation.credit(reply, claimedBy);
    const roundTripMs = credit !== undefined && !credit.request.data.probe
      ? credit.roundTripMs
      : undefined;
    // -v: a time on every reply; where its request is unknown, the time since the last line sent.
    const sinceSentMs = roundTripMs === undefined && this.#verbosity >= VERBOSE &&
        this.#lastSentAt !== undefined
      ? performance.now() - this.#lastSentAt
      : undefined;
    const lines = this.#json && reply.response ? describeResponse(reply.response).lines : [
      reply.text,
    ];
    this.#print(this.#renderer.received(lines, {
      error: reply.error !== undefined,
      ...(roundTripMs !== undefined ? { roundTripMs } : {}),
      ...(sinceSentMs !== undefined ? { sinceSentMs } : {}),
    }));
  }

  // --- input ------------------------------------------------------------------------------------

  async #onLine(line: string): Promise<void> {
    this.#out.promptShown = false;
    // Not awaited: sending must not wait for the history file.
    void this.#options.history.add(line);
    // readline put every line in its history; a secret one (leading space) must not stay there.
    // deno-lint-ignore no-explicit-any
    const history = (this.#rl as any).history as string[] | undefined;
    if (!isRecordable(line) && history?.[0] === line) history.shift();
    const input = parseInput(line);
    switch (input.kind) {
      case "empty":
        break;
      case "invalid":
        this.#print(this.#renderer.notice(input.message, "warning"));
        break;
      case "line":
        this.#sendLines([input.text], false);
        break;
      case "meta":
        await this.#meta(input.name, input.argument);
        break;
    }
    if (!this.#closing) this.#out.prompt();
  }

  /** Sends lines as typed (JSON mode encodes them); `echo` shows each one as sent. */
  #sendLines(lines: string[], echo: boolean): void {
    const conversation = this.#conversation;
    if (!conversation && this.#pending) {
      this.#pending.push(...lines);
      void this.#tryConnect(false);
      return;
    }
    if (!conversation) {
      this.#print(this.#renderer.notice(
        `not connected, nothing sent (${
          this.#options.reconnect ? "reconnecting; " : ""
        }:reconnect to try now)`,
        "warning",
      ));
      return;
    }
    for (const typed of lines) {
      let wire = typed;
      let expectation: Expectation;
      if (this.#json) {
        let id: unknown;
        try {
          ({ line: wire, id } = encodeJsonRequest(typed, this.#nextId++));
        } catch (error) {
          if (!(error instanceof JsonInputError)) throw error;
          this.#print(this.#renderer.notice(error.message, "warning"));
          continue;
        }
        expectation = jsonExpectation(id);
        this.#print(this.#renderer.sent(wire));
      } else {
        expectation = textExpectation(wire);
        if (echo) this.#print(this.#renderer.sent(wire));
      }
      if (this.#probe) this.#probe.userSent = true;
      this.#userLines++;
      this.#lastSentAt = performance.now();
      this.#options.record?.sent(new TextEncoder().encode(`${wire}\n`));
      conversation.enqueue(wire, expectation, { line: wire, probe: false });
    }
    const generation = this.#generation;
    conversation.flush().catch((error) => {
      if (generation === this.#generation) this.#lost(lostReason(error));
    });
  }

  async #meta(name: string, argument: string): Promise<void> {
    const say = (text: string, level: "info" | "warning" = "info") =>
      this.#print(this.#renderer.notice(text, level));
    switch (name) {
      case ":help":
        this.#print(metaHelp().map((line) => this.#renderer.notice(line)).join("\n"));
        return;
      case ":quit":
        this.#quit();
        return;
      case ":reconnect":
        this.#detach();
        say(`reconnecting to ${this.#options.where}`);
        this.#refreshPrompt();
        await this.#tryConnect(true);
        return;
      case ":json": {
        const value = parseToggle(argument, this.#json);
        if (value === undefined) return say("usage: :json on|off", "warning");
        this.#json = value;
        if (this.#conversation) this.#conversation.json = value;
        say(`JSON mode ${value ? "on: type `command name=value …`" : "off"}`);
        if (this.#conn && this.#options.probe) this.#sendProbe();
        this.#rl.setPrompt(this.#promptText());
        return;
      }
      case ":time":
      case ":timestamps": {
        const key = name === ":time" ? "roundTrip" : "timestamps";
        const value = parseToggle(argument, this.#renderer.settings[key]);
        if (value === undefined) return say(`usage: ${name} on|off`, "warning");
        this.#renderer.settings[key] = value;
        say(`${name === ":time" ? "round-trip times" : "timestamps"} ${value ? "on" : "off"}`);
        return;
      }
      case ":send": {
        const path = argument.trim();
        if (!path) return say("usage: :send FILE", "warning");
        let text: string;
        try {
          text = await Deno.readTextFile(path);
        } catch (error) {
          return say(`cannot read ${path}: ${(error as Error).message}`, "warning");
        }
        const lines = text.split("\n").map((line) => line.replace(/\r$/, ""));
        if (lines.at(-1) === "") lines.pop();
        this.#sendLines(lines, true);
        return;
      }
      case ":history": {
        const needle = argument.trim();
        const entries = this.#options.history.entries
          .map((entry, index) => ({ entry, index }))
          .filter(({ entry }) => entry.includes(needle))
          .slice(-50);
        if (entries.length === 0) return say("no history entries");
        this.#print(
          entries.map(({ entry, index }) => this.#renderer.notice(`${index + 1}  ${entry}`)).join(
            "\n",
          ),
        );
        return;
      }
      case ":commands":
        say(this.#commands.size ? [...this.#commands].sort().join(" ") : "no commands known");
        return;
    }
  }

  readonly #onKeypress = (_text: string, key: { ctrl?: boolean; name?: string } | undefined) => {
    if (!(key?.ctrl && key.name === "c")) this.#interruptArmed = false;
  };

  /** Ctrl-C clears the line; a second one, on the now empty line, quits. */
  #onInterrupt(): void {
    if (this.#interruptArmed && this.#rl.line === "") {
      this.#quit();
      return;
    }
    this.#interruptArmed = true;
    if (this.#rl.line !== "") {
      // Like a shell: show ^C after the abandoned line and start a fresh one.
      this.#rl.write(null, { ctrl: true, name: "e" });
      process.stdout.write("^C");
      // deno-lint-ignore no-explicit-any
      (this.#rl as any).clearLine();
      this.#out.prompt();
      return;
    }
    this.#print(this.#renderer.notice("(Ctrl-C again to quit, or Ctrl-D)"));
  }

  #quit(): void {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#reconnectTimer);
    this.#endProbe();
    this.#generation++;
    this.#conn?.close();
    this.#conversation = undefined;
    if (this.#out.promptShown) process.stdout.write("\n");
    process.stdin.off("keypress", this.#onKeypress);
    this.#rl.close();
    // The process exits right after; the last lines typed must reach the history file first.
    void this.#options.history.flush().then(() => this.#finish(0));
  }
}
