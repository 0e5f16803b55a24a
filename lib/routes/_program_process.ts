/**
 * Internal: what every program linesock runs for a client shares, whether it answers one line
 * (`runProgram`, lib/routes/program_runner.ts) or serves a whole connection (`execProtocol`,
 * lib/protocols/exec.ts): it is started from an argv array (no shell), in its own process group,
 * with only an allow-list of the server's environment; that group is killed however the program
 * ends; and a program that cannot be started is named before any client comes.
 *
 * @module
 */

/** What {@linkcode spawnProgram} needs besides the argv. */
export interface ProgramSpawnOptions {
  /** The names of the server's environment variables the program inherits (when readable). */
  readonly inheritEnv: readonly string[];
  /** Variables set for the program (they win over inherited ones). */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** The working directory. @default {the server's} */
  readonly cwd?: string | undefined;
}

/**
 * Starts a program with its three standard streams piped, in a process group of its own (pgid =
 * pid, so that whatever it starts can be killed with it), with a cleared environment.
 * @param argv The program and its arguments (passed as they are; no shell).
 * @param options Environment and working directory.
 * @returns The running child.
 * @throws {Error} The runtime's error when it cannot be started (see {@linkcode describeStartError}).
 */
export function spawnProgram(
  argv: readonly string[],
  options: ProgramSpawnOptions,
): Deno.ChildProcess {
  return new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached: true,
    clearEnv: true,
    env: programEnvironment(options.inheritEnv, options.env),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  }).spawn();
}

/**
 * Why a program could not be started, in a few words.
 * @param error What `spawn` threw.
 * @returns `not found`, `permission denied`, …
 */
export function describeStartError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "not found";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not allowed (see --allow-run)";
  return error instanceof Error ? error.message : String(error);
}

/**
 * Kills the running program's process group, or at least the program. (Once it has exited, use
 * {@linkcode killProcessGroup} for what is left of the group.)
 * @param child The program.
 * @param exited Whether it has exited already (then only its group is tried).
 */
export function killGroup(child: Deno.ChildProcess, exited: boolean): void {
  try {
    Deno.kill(-child.pid, "SIGKILL");
    return;
  } catch {
    // The group is gone already, or group kills are not permitted (a scoped --allow-run).
  }
  if (exited) return;
  try {
    child.kill("SIGKILL");
  } catch {
    // It ended in the meantime.
  }
}

/**
 * Sends SIGKILL to a process group; a group that is gone already is fine.
 *
 * `Deno.kill` needs `--allow-run` without a list. Under a list (`--allow-run=wc,awk`) the `kill`
 * program does it, when the list names it; otherwise the group cannot be signalled, and only the
 * program itself is ever killed (see docs/routes.md).
 * @param pgid The group's id (the program's pid).
 * @returns A promise when the `kill` program was started (it settles when that has ended).
 */
export function killProcessGroup(pgid: number): Promise<void> | undefined {
  try {
    Deno.kill(-pgid, "SIGKILL");
    return undefined;
  } catch (error) {
    // NotFound (ESRCH): nothing is left of the group. PermissionDenied (EPERM): what is left is not
    // ours to kill (a setuid program), and no other way would be allowed either.
    if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  }
  if (Deno.permissions.querySync({ name: "run", command: "kill" }).state !== "granted") {
    return undefined;
  }
  return new Deno.Command("kill", {
    args: ["-s", "KILL", "--", `-${pgid}`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
    clearEnv: true,
  }).output().then(() => {}, () => {});
}

/**
 * Whether this process may read an environment variable (`--allow-env` covers it and it is a valid
 * name). Asking never prompts.
 * @param name A variable name.
 * @returns `true` when it may.
 */
export function mayReadEnv(name: string): boolean {
  if (name === "" || name.includes("=") || name.includes("\0")) return false;
  try {
    return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
  } catch {
    return false; // not a valid name
  }
}

/**
 * A program's environment: the inherited variables that are set and readable, then `extra` on top.
 * @param names The names it may inherit.
 * @param extra Variables set for it.
 * @returns The whole environment.
 */
export function programEnvironment(
  names: readonly string[],
  extra: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of names) {
    // Never Deno.env.get without the permission: it could prompt on a terminal.
    if (!mayReadEnv(name)) continue;
    try {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    } catch {
      // Not a valid name: nothing to pass.
    }
  }
  return extra ? Object.assign(env, extra) : env;
}

/**
 * Why a program could not be started, found before starting it: the runtime looks a name without
 * `/` up in the `PATH` the program gets (not the server's), and a name with `/` relative to its
 * working directory.
 * @param program The program (`argv[0]`).
 * @param options The environment and working directory it would get.
 * @returns The reason (`not found in PATH`, `not executable`, …), or `undefined` when it was found
 * or this process may not look (no `--allow-read`): then the start itself says.
 */
export function programMissing(program: string, options: ProgramSpawnOptions): string | undefined {
  const within = (path: string) =>
    path.startsWith("/") || options.cwd === undefined ? path : `${options.cwd}/${path}`;
  if (program.includes("/")) {
    const found = executable(within(program));
    return found === false ? "not found, or not an executable file" : undefined;
  }
  const path = programEnvironment(options.inheritEnv, options.env).PATH;
  if (path === undefined) return "not found (the program gets no PATH: give its path)";
  for (const directory of path.split(":")) {
    const found = executable(within(`${directory === "" ? "." : directory}/${program}`));
    if (found !== false) return undefined;
  }
  return "not found in PATH";
}

/** Whether `path` is an executable file; `undefined` when this process may not look. */
function executable(path: string): boolean | undefined {
  try {
    const info = Deno.statSync(path);
    return info.isFile && (info.mode === null || (info.mode & 0o111) !== 0);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) return undefined;
    return false;
  }
}
