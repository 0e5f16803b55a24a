import assert from "node:assert/strict";
import { colorWanted } from "../../../commands/_cli/color.ts";

Deno.test("colorWanted: NO_COLOR, FORCE_COLOR and CLICOLOR_FORCE", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.equal(colorWanted(true, env({})), true);
  assert.equal(colorWanted(false, env({})), false);
  assert.equal(colorWanted(true, env({ NO_COLOR: "1" })), false);
  assert.equal(colorWanted(true, env({ NO_COLOR: "" })), true);
  assert.equal(colorWanted(false, env({ FORCE_COLOR: "1" })), true);
  assert.equal(colorWanted(false, env({ CLICOLOR_FORCE: "1" })), true);
  assert.equal(colorWanted(false, env({ FORCE_COLOR: "0" })), false);
  assert.equal(colorWanted(false, env({ FORCE_COLOR: "1", NO_COLOR: "1" })), false);
});
