/**
 * A linesock client command (`send`, `repl`, `echo-test`) running as a process, possibly inside a
 * network namespace, whose stdout lines are collected as they arrive, so that a test can wait for
 * the N-th reply (an event, bounded by a timeout) and feed stdin step by step.
 *
 * @module
 */
import { type CliTask, taskArgs, within } from "../_support/cli.ts";

/** How a client process ended. */
export interface ClientExit {
  /** Exit status. */
  readonly code: number;
  /** Every stdout line (without its `\n`; an unterminated last line too). */
  readonly lines: string[];
  /** Standard error. */
  readonly stderr: string;
  /** From the spawn to the exit, in ms. */
  readonly elapsedMs: number;
  /** When it exited (performance.now()). */
  readonly endedAt: number;
}

/** Options of {@linkcode ClientProcess.start}. */
export interface ClientOptions {
  /** Words that run the command in a namespace (`ip netns exec NAME`). */
  wrapper?: string[];
  /** Give it a piped stdin (else stdin is empty). */
  stdin?: boolean;
  /** Kill it after this long. @default {240000} */
  killAfterMs?: number;
}

/** A running client command. */
export class ClientProcess {
  /** Stdout lines so far. */
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  readonly #waiters = new Set<() => void>();
  readonly #started = performance.now();
  readonly #exit: Promise<ClientExit>;
  #stderr = "";
  #done = false;

  private constructor(task: CliTask, args: string[], options: ClientOptions) {
    const [command, ...rest] = [
      ...options.wrapper ?? [],
      Deno.execPath(),
      ...taskArgs(task),
      ...args,
    ];
    const child = new Deno.Command(command!, {
      args: rest,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#child = child;
    this.#writer = options.stdin ? child.stdin.getWriter() : undefined;
    const killer = setTimeout(() => this.kill(), options.killAfterMs ?? 240_000);
    const stdout = this.#readStdout();
    const stderr = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
      }
    })();
    this.#exit = (async () => {
      const status = await child.status;
      await Promise.all([stdout, stderr]);
      clearTimeout(killer);
      this.#done = true;
      for (const wake of this.#waiters) wake();
      return {
        code: status.code,
        lines: this.lines,
        stderr: this.#stderr,
        elapsedMs: performance.now() - this.#started,
        endedAt: performance.now(),
      };
    })();
  }

  /**
   * Starts `linesock TASK ARGS…` with the task's permission flags.
   * @returns The running process.
   */
  static start(task: CliTask, args: string[], options: ClientOptions = {}): ClientProcess {
    return new ClientProcess(task, args, options);
  }

  async #readStdout(): Promise<void> {
    let pending = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      if (parts.length === 0) continue;
      for (const part of parts) this.lines.push(part);
      for (const wake of this.#waiters) wake();
    }
    if (pending !== "") this.lines.push(pending);
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves when it exits. */
  get exit(): Promise<ClientExit> {
    return this.#exit;
  }

  /**
   * Waits until `count` stdout lines arrived (or the process exited: then it resolves too, and the
   * caller checks the count).
   */
  async waitForLines(count: number, ms: number, what: string): Promise<void> {
    let wake!: () => void;
    const enough = new Promise<void>((resolve) => {
      wake = () => {
        if (this.lines.length >= count || this.#done) resolve();
      };
    });
    this.#waiters.add(wake);
    wake();
    try {
      await within(enough, ms, `${what} (${this.lines.length} of ${count} lines so far)`);
    } finally {
      this.#waiters.delete(wake);
    }
  }

  /**
   * Writes to stdin.
   * @returns `false` when the process no longer reads it (it ended).
   */
  async write(text: string): Promise<boolean> {
    try {
      await this.#writer!.write(new TextEncoder().encode(text));
      return true;
    } catch {
      return false;
    }
  }

  /** Ends stdin. */
  async closeStdin(): Promise<void> {
    await this.#writer?.close().catch(() => {});
  }

  /** Kills it (SIGKILL). */
  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
  }
}
