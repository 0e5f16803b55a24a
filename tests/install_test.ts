/**
 * `deno task install` into a scratch HOME, install root and build folder (`--dist`: the clone's own
 * `dist/`, which an installed `linesock` may run, is left alone), as a new user would run it: the
 * launcher answers, bash loads the completions it wrote, fish's file is where fish looks, and `man`
 * finds the page from the launcher's folder on PATH (Debian's man-db, which .ci/run installs).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startServer } from "./_support/cli.ts";
import { toolMissing } from "./_support/tools.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MAN_MISSING = toolMissing("man", ["--version"]);

Deno.test("deno task install: launcher, completions and man page", async (t) => {
  const home = await Deno.makeTempDir({ prefix: "linesock-install-" });
  const root = `${home}/deno-root`;
  const env = {
    HOME: home,
    DENO_INSTALL_ROOT: root,
    XDG_DATA_HOME: `${home}/data`,
    XDG_CONFIG_HOME: `${home}/config`,
    // The scratch HOME has no Deno cache: share this one (npm packages, esbuild).
    DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    NO_COLOR: "1",
    PATH: `${root}/bin:${Deno.env.get("PATH")}`,
  };
  try {
    const installed = await new Deno.Command(Deno.execPath(), {
      args: ["task", "install", "--dist", `${home}/dist`],
      cwd: ROOT,
      env,
      stdin: "null",
    }).output();
    const printed = new TextDecoder().decode(installed.stdout);
    assert.equal(installed.code, 0, new TextDecoder().decode(installed.stderr));

    await t.step("the launcher runs the build", async () => {
      await using server = await startServer(["--port", "0"]);
      const output = await new Deno.Command(`${root}/bin/linesock`, {
        args: ["send", "--port", String(server.port), "PING"],
        env,
        stdin: "null",
      }).output();
      assert.equal(new TextDecoder().decode(output.stdout), "PONG\n");
      assert.equal(output.code, 0);
    });

    await t.step("bash loads the completions from where bash-completion looks", async () => {
      const file = `${home}/data/bash-completion/completions/linesock`;
      assert.match(printed, new RegExp(`wrote ${file}`));
      const output = await new Deno.Command("bash", {
        args: ["-c", `source ${file} && complete -p linesock`],
        env,
      }).output();
      assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
      assert.match(new TextDecoder().decode(output.stdout), /complete .* linesock/);
    });

    await t.step("fish's completions and the zsh line", async () => {
      const fish = await Deno.readTextFile(`${home}/config/fish/completions/linesock.fish`);
      assert.match(fish, /complete -c linesock/);
      assert.match(printed, /zsh: add to ~\/\.zshrc: source <\(linesock completions zsh\)/);
    });

    await t.step({
      name: "man finds linesock(1) through the launcher's folder on PATH",
      ignore: MAN_MISSING !== undefined,
      async fn() {
        const output = await new Deno.Command("man", {
          args: ["-w", "linesock"],
          env: { ...env, MANPATH: "" },
        }).output();
        assert.equal(
          new TextDecoder().decode(output.stdout).trim(),
          `${root}/share/man/man1/linesock.1`,
          new TextDecoder().decode(output.stderr),
        );
      },
    });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
