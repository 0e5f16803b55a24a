/**
 * The layer check (`deno task layers`) passes on this repository and fails, naming the file, the
 * line and the import, on a tree that breaks the rule.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { checkLayers } from "../_tools/check_layers.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

Deno.test("layer rule", async (t) => {
  await t.step("this repository keeps it", async () => {
    assert.deepEqual(await checkLayers(ROOT), []);
  });

  await t.step("each kind of wrong import is reported with its file and line", async () => {
    const root = await Deno.makeTempDir();
    try {
      const write = async (path: string, text: string) => {
        await Deno.mkdir(`${root}/${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
        await Deno.writeTextFile(`${root}/${path}`, text);
      };
      await write("lib/errors.ts", "export const e = 1;\n");
      await write(
        "lib/framing/f.ts",
        'import { e } from "../errors.ts";\nimport "../server/s.ts";\n',
      );
      await write("lib/server/s.ts", '// a comment\nexport { c } from "../client/c.ts";\n');
      await write("lib/client/c.ts", 'export const c = await import("../server/s.ts");\n');
      await write(
        "lib/protocols/p.ts",
        'import "../../commands/send.ts";\nimport "../server/s.ts";\n',
      );
      await write("lib/mod.ts", 'export * from "./server/s.ts";\n');
      // A doc example is not an import of the module.
      await write("lib/routes/r.ts", '/**\n * import { x } from "../server/s.ts";\n */\n');
      const found = (await checkLayers(root)).map((v) => `${v.file}:${v.line} ${v.specifier}`);
      assert.deepEqual(found, [
        "lib/client/c.ts:1 ../server/s.ts",
        "lib/framing/f.ts:2 ../server/s.ts",
        "lib/protocols/p.ts:1 ../../commands/send.ts",
        "lib/server/s.ts:2 ../client/c.ts",
      ]);
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", `${ROOT}_tools/check_layers.ts`, root],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(run.code, 1);
      assert.match(
        new TextDecoder().decode(run.stderr),
        /lib\/server\/s\.ts:2: imports '\.\.\/client\/c\.ts' \(lib\/server\/ may not import lib\/client\/\)/,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});
