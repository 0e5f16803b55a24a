/**
 * A Unix socket made by `linesock serve` cannot be opened by another, unprivileged user. The check
 * really runs a connect attempt as a throw-away system user (`linesock-probe`, created when missing),
 * which needs root and `runuser`; elsewhere the test is ignored, with the reason printed.
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { exchange } from "../_support/line_session.ts";

const PROBE_USER = "linesock-probe";

/** Why the check cannot run here, or undefined when it can. */
async function whyNot(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "needs Linux";
  if (Deno.uid() !== 0) return "needs root to switch to a throw-away user";
  const found = await new Deno.Command("sh", { args: ["-c", "command -v runuser useradd"] })
    .output();
  if (!found.success) return "needs runuser and useradd";
  return undefined;
}

const reason = await whyNot();
if (reason !== undefined) console.warn(`unix socket permissions test ignored: ${reason}`);

async function ensureProbeUser(): Promise<void> {
  const exists = await new Deno.Command("id", {
    args: ["-u", PROBE_USER],
    stdout: "null",
    stderr: "null",
  })
    .output();
  if (exists.success) return;
  const made = await new Deno.Command("useradd", {
    args: ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER],
  }).output();
  assert.ok(made.success, new TextDecoder().decode(made.stderr));
}

/** Connects to `path` as the probe user: "PONG" on success, else the error's class name. */
async function probe(path: string): Promise<string> {
  const script = `
    try {
      const conn = await Deno.connect({ transport: "unix", path: ${JSON.stringify(path)} });
      await conn.write(new TextEncoder().encode("PING\\n"));
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      console.log(new TextDecoder().decode(buffer.subarray(0, n ?? 0)).trim());
      conn.close();
    } catch (error) {
      console.log(error.name);
    }`;
  const output = await new Deno.Command("runuser", {
    args: ["-u", PROBE_USER, "--", Deno.execPath(), "eval", "--quiet", script],
    cwd: "/",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(30_000),
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  assert.ok(output.success, `probe failed: ${new TextDecoder().decode(output.stderr)}`);
  return text;
}

Deno.test({
  name: "reliability: a Unix socket is not open to other users",
  ignore: reason !== undefined,
  async fn(t) {
    await ensureProbeUser();
    // A directory every user may enter, so only the socket's own mode decides.
    const open = await Deno.makeTempDir({ prefix: "linesock-perm-" });
    await Deno.chmod(open, 0o755);
    try {
      await t.step("default mode 0600: the other user is refused", async () => {
        const path = `${open}/default.sock`;
        await using server = await startServer(["--unix", path, "--quiet"]);
        assert.equal((await Deno.lstat(path)).mode! & 0o777, 0o600);
        assert.equal(await probe(server.path), "PermissionDenied");
        assert.deepEqual(await exchange({ transport: "unix", path }, ["PING"]), ["PONG"]);
        // Nothing but the socket is left in the directory (the private staging directory is gone).
        const entries = await Array.fromAsync(Deno.readDir(open), (entry) => entry.name);
        assert.deepEqual(entries, ["default.sock"]);
      });

      await t.step("control: --socket-mode 666 lets the other user in", async () => {
        const path = `${open}/shared.sock`;
        await using server = await startServer(["--unix", path, "--socket-mode", "666", "--quiet"]);
        assert.equal(await probe(server.path), "PONG");
      });

      await t.step("a socket with mode 0666 inside a 0700 directory is still refused", async () => {
        const closed = `${open}/private`;
        await Deno.mkdir(closed, { mode: 0o700 });
        await Deno.chmod(closed, 0o700);
        const path = `${closed}/inner.sock`;
        await using server = await startServer(["--unix", path, "--socket-mode", "666", "--quiet"]);
        assert.equal(await probe(server.path), "PermissionDenied");
      });
    } finally {
      await Deno.remove(open, { recursive: true });
    }
  },
});
