import assert from "node:assert/strict";
import {
  defaultHistoryPath,
  HistoryStore,
  isRecordable,
} from "../../../commands/_repl/history_store.ts";

Deno.test("HistoryStore", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "linesock-history-" });
  try {
    await t.step("path follows XDG_STATE_HOME, then HOME, and ignores a relative XDG path", () => {
      const env = (vars: Record<string, string>) => (name: string) => vars[name];
      assert.equal(
        defaultHistoryPath(env({ XDG_STATE_HOME: "/s/", HOME: "/h" })),
        "/s/linesock/history",
      );
      assert.equal(defaultHistoryPath(env({ HOME: "/h" })), "/h/.local/state/linesock/history");
      assert.equal(
        defaultHistoryPath(env({ XDG_STATE_HOME: "rel", HOME: "/h" })),
        "/h/.local/state/linesock/history",
      );
      assert.equal(defaultHistoryPath(env({})), undefined);
    });

    await t.step("secret (leading space) and blank lines are never recorded", async () => {
      assert.equal(isRecordable(" password"), false);
      assert.equal(isRecordable("\tsecret"), false);
      assert.equal(isRecordable("   "), false);
      assert.equal(isRecordable("PING"), true);
      const path = `${dir}/a/b/history`;
      const store = new HistoryStore(path, 10);
      assert.equal(await store.add(" AUTH hunter2"), false);
      assert.equal(await store.add("PING"), true);
      assert.deepEqual(store.entries, ["PING"]);
      assert.equal(await Deno.readTextFile(path), "PING\n");
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    });

    await t.step("persists across sessions, newest first for readline", async () => {
      const path = `${dir}/persist`;
      const first = new HistoryStore(path, 10);
      for (const line of ["one", "two", "three"]) await first.add(line);
      const second = new HistoryStore(path, 10);
      await second.load();
      assert.deepEqual(second.entries, ["one", "two", "three"]);
      assert.deepEqual(second.newestFirst(), ["three", "two", "one"]);
    });

    await t.step("a repeated line moves to the end instead of being stored twice", async () => {
      const path = `${dir}/dupes`;
      const store = new HistoryStore(path, 10);
      for (const line of ["a", "b", "a"]) await store.add(line);
      assert.deepEqual(store.entries, ["b", "a"]);
      const reloaded = new HistoryStore(path, 10);
      await reloaded.load();
      assert.deepEqual(reloaded.entries, ["b", "a"]);
    });

    await t.step("bounded in memory and on disk", async () => {
      const path = `${dir}/bounded`;
      const store = new HistoryStore(path, 5);
      for (let i = 1; i <= 23; i++) await store.add(`line ${i}`);
      assert.deepEqual(store.entries, ["line 19", "line 20", "line 21", "line 22", "line 23"]);
      const onDisk = (await Deno.readTextFile(path)).split("\n").filter(Boolean);
      assert.ok(onDisk.length <= 10, `file has ${onDisk.length} lines`);
      const reloaded = new HistoryStore(path, 5);
      await reloaded.load();
      assert.deepEqual(reloaded.entries, store.entries);
      // Loading an over-long file trims it.
      assert.equal((await Deno.readTextFile(path)).split("\n").filter(Boolean).length, 5);
    });

    await t.step("lines added without waiting reach the file in order; flush waits", async () => {
      const path = `${dir}/burst`;
      const store = new HistoryStore(path, 100);
      const lines = Array.from({ length: 30 }, (_, i) => `burst ${i}`);
      for (const line of lines) void store.add(line);
      assert.deepEqual(store.entries, lines);
      await store.flush();
      assert.equal(await Deno.readTextFile(path), lines.map((line) => `${line}\n`).join(""));
    });

    await t.step("a missing file is an empty history, and no path keeps it in memory", async () => {
      const missing = new HistoryStore(`${dir}/nope/history`);
      await missing.load();
      assert.deepEqual(missing.entries, []);
      const memory = new HistoryStore(undefined, 3);
      await memory.add("x");
      assert.deepEqual(memory.entries, ["x"]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
