/**
 * The interactive repl session: a `node:readline` prompt with history and completion, a socket that is
 * read all the time (replies show up the moment they arrive, above the line being typed), meta-commands,
 * JSON mode, round-trip times, and reconnection with backoff when the connection is lost.
 *
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import { connect, type ConnectOptions, type LineConnection } from "../../lib/client/client.ts";
import { LineTooLongError } from "../../lib/errors.ts";
import { commandsFromHelpReply, commandsFromJsonHelp, completeLine } from "./completion.ts";
import { type HistoryStore, isRecordable } from "./history_store.ts";
import { describeJsonResponse, encodeJsonRequest, JsonInputError } from "./json_request.ts";
import { metaHelp, parseInput, parseToggle } from "./meta_command.ts";
import { Renderer, type RenderSettings } from "./render.ts";
import { TerminalOutput } from "./terminal_output.ts";

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
  /** The history store (already loaded). */
  history: HistoryStore;
}

/** The id of the JSON `help` request sent on connect; its response is not shown. */
export const PROBE_ID = "linesock-repl-help";
const PROBE_TIMEOUT_MS = 3000;
const FIRST_RECONNECT_DELAY_MS = 250;
const MAX_RECONNECT_DELAY_MS = 5000;

/**
 * The delay before reconnection attempt `attempt` (1-based): doubling from 250 ms up to 5 s.
 * @param attempt The attempt number.
 * @returns Milliseconds.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(FIRST_RECONNECT_DELAY_MS * 2 ** Math.max(0, attempt - 1), MAX_RECONNECT_DELAY_MS);
}

/** The built-in names Tab completes before the server said anything. */
const BUILT_IN_COMMANDS = { text: ["HELP"], json: ["help"] } as const;

interface Probe {
  mode: "text" | "json";
  /** Whether the user sent a line after the probe (then an error reply may be theirs). */
  userSent: boolean;
  timer: ReturnType<typeof setTimeout>;
}

interface PendingRequest {
  id: unknown;
  at: number;
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
  #conn: LineConnection | undefined;
  #generation = 0;
  #json: boolean;
  #commands = new Set<string>();
  #probe: Probe | undefined;
  #pending: PendingRequest[] = [];
  #nextId = 1;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #reconnectAttempt = 0;
  #lastFailure = "";
  #connecting = false;
  #interruptArmed = false;
  #closing = false;

  constructor(first: LineConnection, options: InteractiveOptions) {
    this.#options = options;
    this.#json = options.json;
    this.#renderer = new Renderer(options.render);
    this.done = new Promise((resolve) => this.#finish = resolve);
    // Set before the prompt is built, so it does not say "disconnected".
    this.#conn = first;
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
    this.#print(this.#renderer.notice(
      `connected to ${options.where}; :help for help, Ctrl-D to quit`,
    ));
    this.#attach(first);
    this.#out.prompt();
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

  // --- connection -------------------------------------------------------------------------------

  #attach(conn: LineConnection): void {
    this.#conn = conn;
    const generation = ++this.#generation;
    this.#pending = [];
    this.#reconnectAttempt = 0;
    this.#lastFailure = "";
    if (this.#options.probe) this.#sendProbe();
    this.#readLoop(conn, generation);
  }

  async #readLoop(conn: LineConnection, generation: number): Promise<void> {
    const decoder = new TextDecoder();
    let reason = "closed by the server";
    try {
      for (;;) {
        let bytes: Uint8Array | null;
        try {
          bytes = await conn.readRawLine();
        } catch (error) {
          if (!(error instanceof LineTooLongError)) throw error;
          if (generation === this.#generation) {
            this.#print(
              this.#renderer.notice(
                `a reply was too long and was cut: ${error.message}`,
                "warning",
              ),
            );
          }
          continue;
        }
        if (bytes === null) break;
        if (generation !== this.#generation) return;
        // Replacement characters instead of an error: the user should see what arrived.
        this.#onReply(decoder.decode(bytes));
      }
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
    if (generation === this.#generation) this.#lost(reason);
  }

  #lost(reason: string): void {
    this.#detach();
    if (this.#closing) return;
    this.#print(
      this.#renderer.notice(`connection to ${this.#options.where} lost: ${reason}`, "warning"),
    );
    if (this.#options.reconnect) {
      this.#print(this.#renderer.notice("reconnecting… (:quit to leave; your history is kept)"));
      this.#scheduleReconnect();
    } else {
      this.#print(this.#renderer.notice(":reconnect to connect again, :quit to leave"));
    }
    this.#refreshPrompt();
  }

  #detach(): void {
    this.#generation++;
    this.#conn?.close();
    this.#conn = undefined;
    this.#pending = [];
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
      const conn = await connect({
        ...this.#options.connect,
        connectTimeoutMs: Math.min(this.#options.connect.connectTimeoutMs ?? 5000, 5000),
        retries: 0,
      });
      if (this.#closing) {
        conn.close();
        return;
      }
      this.#print(
        this.#renderer.notice(`${manual ? "connected" : "reconnected"} to ${this.#options.where}`),
      );
      this.#attach(conn);
      this.#refreshPrompt();
    } catch (error) {
      if (this.#closing) return;
      const message = error instanceof Error ? error.message : String(error);
      // Repeating the same failure every few seconds would bury the screen; say it when it changes.
      if (manual || message !== this.#lastFailure) {
        this.#print(this.#renderer.notice(message, "warning"));
      }
      this.#lastFailure = message;
      if (this.#options.reconnect) this.#scheduleReconnect();
    } finally {
      this.#connecting = false;
    }
  }

  // --- probe for command names ------------------------------------------------------------------

  #sendProbe(): void {
    this.#endProbe();
    const mode = this.#json ? "json" : "text";
    for (const name of BUILT_IN_COMMANDS[mode]) this.#commands.add(name);
    const line = mode === "json"
      ? JSON.stringify({ command: "help", args: {}, id: PROBE_ID })
      : "HELP";
    this.#probe = {
      mode,
      userSent: false,
      // A server that never answers HELP must not hold back what comes after.
      timer: setTimeout(() => this.#endProbe(), PROBE_TIMEOUT_MS),
    };
    this.#conn?.send(line).catch(() => {});
  }

  #endProbe(): void {
    if (this.#probe) clearTimeout(this.#probe.timer);
    this.#probe = undefined;
  }

  /** Whether `line` answers the probe (then it is not shown). */
  #consumeProbe(line: string): boolean {
    const probe = this.#probe;
    if (!probe) return false;
    if (probe.mode === "text") {
      const names = commandsFromHelpReply(line);
      if (names) {
        for (const name of names) this.#commands.add(name);
        this.#endProbe();
        return true;
      }
      // An error reply (a server without HELP) or an echo, before the user sent anything.
      if (!probe.userSent && (/^ERR\b/.test(line) || line === "HELP")) {
        this.#endProbe();
        return true;
      }
      return false;
    }
    const response = describeJsonResponse(line);
    if (response.id === PROBE_ID) {
      if (response.kind === "ok") {
        for (const name of commandsFromJsonHelp(JSON.parse(line).message)) this.#commands.add(name);
      }
      this.#endProbe();
      return true;
    }
    if (!probe.userSent && response.id === undefined && response.kind !== "ok") {
      this.#endProbe();
      return true;
    }
    return false;
  }

  // --- replies ----------------------------------------------------------------------------------

  #onReply(line: string): void {
    if (this.#consumeProbe(line)) return;
    if (!this.#json) {
      const request = this.#pending.shift();
      this.#print(this.#renderer.received([line], {
        error: /^ERR\b/.test(line),
        ...(request ? { roundTripMs: performance.now() - request.at } : {}),
      }));
      return;
    }
    const response = describeJsonResponse(line);
    let index = response.id === undefined
      ? 0
      : this.#pending.findIndex((request) => request.id === response.id);
    if (response.kind === "raw" && response.id === undefined) index = -1;
    const request = index >= 0 ? this.#pending.splice(index, 1)[0] : undefined;
    this.#print(this.#renderer.received(response.lines, {
      error: response.kind === "error" || /^ERR\b/.test(line),
      ...(request ? { roundTripMs: performance.now() - request.at } : {}),
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
    const conn = this.#conn;
    if (!conn) {
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
      let id: unknown = undefined;
      if (this.#json) {
        try {
          ({ line: wire, id } = encodeJsonRequest(typed, this.#nextId++));
        } catch (error) {
          if (!(error instanceof JsonInputError)) throw error;
          this.#print(this.#renderer.notice(error.message, "warning"));
          continue;
        }
        this.#print(this.#renderer.sent(wire));
      } else if (echo) {
        this.#print(this.#renderer.sent(wire));
      }
      if (this.#probe) this.#probe.userSent = true;
      this.#pending.push({ id, at: performance.now() });
      conn.enqueue(wire);
    }
    const generation = this.#generation;
    conn.flush().catch((error) => {
      if (generation === this.#generation) {
        this.#lost(error instanceof Error ? error.message : String(error));
      }
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
    this.#conn = undefined;
    if (this.#out.promptShown) process.stdout.write("\n");
    process.stdin.off("keypress", this.#onKeypress);
    this.#rl.close();
    // The process exits right after; the last lines typed must reach the history file first.
    void this.#options.history.flush().then(() => this.#finish(0));
  }
}
