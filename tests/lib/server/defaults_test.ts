import assert from "node:assert/strict";
import { CLI_SERVE_DEFAULTS, SERVE_DEFAULTS } from "../../../lib/server/mod.ts";

/** The `@default {…}` of each option in ServeOptions' documentation (lib/server/serve.ts). */
async function documentedDefaults(): Promise<Map<string, string>> {
  const source = await Deno.readTextFile(new URL("../../../lib/server/serve.ts", import.meta.url));
  const body = source.slice(source.indexOf("export interface ServeOptions"));
  const options = body.slice(0, body.indexOf("\n}\n"));
  const found = new Map<string, string>();
  // Each option: its doc comment, then `name?: type;`.
  for (const match of options.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*(\w+)\?:/g)) {
    const value = /@default \{([^}]*)\}/.exec(match[1]!)?.[1];
    if (value !== undefined) found.set(match[2]!, value);
  }
  return found;
}

/** A documented default as a value (`{Infinity}`, `{0o600}`, `{"text"}`, `{false}`). */
function valueOf(text: string): unknown {
  if (text.startsWith('"')) return JSON.parse(text);
  if (text === "true" || text === "false") return text === "true";
  return Number(text);
}

Deno.test("server defaults", async (t) => {
  await t.step("ServeOptions documents each default as the table has it", async () => {
    const documented = await documentedDefaults();
    for (const [option, value] of Object.entries(SERVE_DEFAULTS)) {
      // closeAfterLines has no default to document: no limit.
      if (option === "closeAfterLines") {
        assert.equal(value, Infinity);
        continue;
      }
      assert.ok(documented.has(option), `${option} has no @default`);
      assert.deepEqual(valueOf(documented.get(option)!), value, option);
    }
    // The one default that is another option's value.
    assert.equal(documented.get("queueTimeoutMs"), "idleTimeoutMs");
    const tableless = [...documented.keys()].filter((option) =>
      !(option in SERVE_DEFAULTS) && option !== "queueTimeoutMs"
    );
    assert.deepEqual(tableless, []);
  });

  await t.step("the CLI differs only in the timeouts of the line protocols", () => {
    assert.deepEqual(CLI_SERVE_DEFAULTS, {
      line: { idleTimeoutMs: 300_000, lineTimeoutMs: 30_000 },
      echo: { idleTimeoutMs: SERVE_DEFAULTS.idleTimeoutMs, lineTimeoutMs: 0 },
    });
  });

  await t.step("the tables cannot be changed at run time", () => {
    for (
      const table of [SERVE_DEFAULTS, CLI_SERVE_DEFAULTS, ...Object.values(CLI_SERVE_DEFAULTS)]
    ) {
      assert.ok(Object.isFrozen(table));
    }
  });
});
