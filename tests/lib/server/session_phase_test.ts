import assert from "node:assert/strict";
import {
  canTransition,
  Phase,
  PHASE_NAMES,
  transition,
  TRANSITIONS,
} from "../../../lib/server/session_phase.ts";

const PHASES = Object.values(Phase);

/** The table, written out as the lifecycle reads (docs in lib/server/session_phase.ts). */
const EXPECTED: [keyof typeof Phase, (keyof typeof Phase)[]][] = [
  ["Queued", ["Reading", "Working", "Refusing", "Closed"]],
  ["Reading", ["Working", "Refusing", "Lingering", "Closed"]],
  ["Working", ["Reading", "Closing", "Refusing", "Closed"]],
  ["Closing", ["Lingering", "Refusing", "Closed"]],
  ["Refusing", ["Closed"]],
  ["Lingering", ["Closed"]],
  ["Closed", []],
];

Deno.test("session phases", async (t) => {
  await t.step("one name per phase, in order", () => {
    assert.deepEqual(PHASES, [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(PHASE_NAMES, Object.keys(Phase));
  });

  await t.step("the table is the lifecycle", () => {
    for (const [from, tos] of EXPECTED) {
      assert.deepEqual(
        TRANSITIONS[Phase[from]].map((to) => PHASE_NAMES[to]),
        tos,
        `from ${from}`,
      );
    }
  });

  await t.step("every allowed transition is performed", () => {
    let allowed = 0;
    for (const from of PHASES) {
      for (const to of TRANSITIONS[from]) {
        assert.equal(canTransition(from, to), true);
        assert.equal(transition(from, to), to);
        allowed++;
      }
    }
    assert.equal(allowed, 17);
  });

  await t.step("every other transition is refused with an error naming both phases", () => {
    let refused = 0;
    for (const from of PHASES) {
      for (const to of PHASES) {
        if (TRANSITIONS[from].includes(to)) continue;
        assert.equal(canTransition(from, to), false, `${PHASE_NAMES[from]} to ${PHASE_NAMES[to]}`);
        assert.throws(
          () => transition(from, to),
          new Error(
            `session phase: no transition from ${PHASE_NAMES[from]} to ${PHASE_NAMES[to]}`,
          ),
        );
        refused++;
      }
    }
    assert.equal(refused, 7 * 7 - 17);
  });

  await t.step("no phase goes to itself, everything can be destroyed, Closed is the end", () => {
    for (const from of PHASES) {
      assert.equal(canTransition(from, from), false, PHASE_NAMES[from]);
      if (from !== Phase.Closed) assert.equal(canTransition(from, Phase.Closed), true);
    }
    assert.deepEqual(TRANSITIONS[Phase.Closed], []);
    assert.throws(() => transition(Phase.Closed, Phase.Working), /from Closed to Working/);
    assert.throws(() => transition(Phase.Lingering, Phase.Refusing), /Lingering to Refusing/);
  });
});
