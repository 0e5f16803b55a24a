/**
 * The reports of `linesock test`: a line per file for people (with the failing step, a diff and the
 * timing), one JSON object for machines, JUnit XML for CI systems, and TAP.
 *
 * @module
 */
import type { ConversationResult } from "./runner.ts";
import { escapeControls } from "../../lib/_control_escape.ts";

/**
 * The people's report of one file. What the server sent (and the file's expectations, which may
 * hold any byte) is shown with its control characters escaped: the server is untrusted, and what
 * it sends never drives the terminal (the JUnit and TAP reports are made of these lines too).
 * @param result How it went.
 * @returns Lines: `PASS file (N steps, T ms)`, or `FAIL …` with the step and a diff.
 */
export function formatResult(result: ConversationResult): string[] {
  const ms = Math.round(result.durationMs);
  if (result.passed) return [`PASS ${result.path} (${result.steps} steps, ${ms} ms)`];
  const lines: string[] = [];
  const failure = result.failure;
  if (failure) {
    lines.push(
      `FAIL ${result.path}:${failure.line}: ${
        escapeControls(failure.message)
      } (step ${result.stepsRun} of ` +
        `${result.steps}, waited ${Math.round(failure.waitedMs)} ms)`,
      `  step: ${escapeControls(failure.source)}`,
    );
    for (const line of failure.expected) lines.push(`  - ${escapeControls(line)}`);
    for (const line of failure.received) lines.push(`  + ${escapeControls(line)}`);
  } else {
    lines.push(`FAIL ${result.path}: ${result.updates.length} expectations differ`);
  }
  return lines;
}

/** Everything about a run, as one JSON object. */
export function jsonReport(results: readonly ConversationResult[]): string {
  return JSON.stringify({
    passed: results.filter((result) => result.passed).length,
    failed: results.filter((result) => !result.passed).length,
    files: results.map((result) => ({
      path: result.path,
      passed: result.passed,
      steps: result.steps,
      stepsRun: result.stepsRun,
      durationMs: Math.round(result.durationMs * 10) / 10,
      ...(result.failure ? { failure: result.failure } : {}),
    })),
  });
}

function xml(text: string): string {
  return text.replace(
    /[<>&"']/g,
    (char) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[char]!,
  )
    // XML 1.0 cannot carry most control characters, even escaped.
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, (char) => `\\x${char.charCodeAt(0).toString(16)}`);
}

/**
 * JUnit XML: one test case per file, its failure with the step and the diff.
 * @param results Every file's result.
 * @returns The XML document.
 */
export function junitReport(results: readonly ConversationResult[]): string {
  const failures = results.filter((result) => !result.passed).length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const total = results.reduce((sum, result) => sum + result.durationMs, 0);
  const cases = results.map((result) => {
    const open = `    <testcase classname="linesock.test" name="${xml(result.path)}" time="${
      seconds(result.durationMs)
    }"`;
    if (result.passed) return `${open}/>`;
    const [summary, ...detail] = formatResult(result);
    return `${open}>\n      <failure message="${xml(summary!)}">${
      xml(detail.join("\n"))
    }</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${results.length}" failures="${failures}" time="${seconds(total)}">`,
    `  <testsuite name="linesock test" tests="${results.length}" failures="${failures}" time="${
      seconds(total)
    }">`,
    ...cases,
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}

/**
 * TAP version 13.
 * @param results Every file's result.
 * @returns The TAP stream.
 */
export function tapReport(results: readonly ConversationResult[]): string {
  const lines = ["TAP version 13", `1..${results.length}`];
  for (const [index, result] of results.entries()) {
    lines.push(`${result.passed ? "ok" : "not ok"} ${index + 1} - ${result.path}`);
    if (!result.passed) {
      lines.push("  ---", ...formatResult(result).map((line) => `  # ${line}`), "  ...");
    }
  }
  return lines.join("\n") + "\n";
}
