/**
 * The reply verifiers under every chunking: wherever the received stream is cut, the requests
 * completed and the wrong replies counted are the same, in each of the three modes.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createVerifier } from "../../../commands/_bench/verifiers.ts";
import { planWorkload, type Workload } from "../../../commands/_bench/workload.ts";
import type { LineCheck, RequestSpec } from "../../../commands/_bench/expectation.ts";
import { LineTemplate } from "../../../commands/_bench/template.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const exact = (line: string): LineCheck => ({ kind: "exact", line: LineTemplate.fromText(line) });
const request = (line: string, ...reply: LineCheck[]): RequestSpec => ({
  line: LineTemplate.fromText(line),
  reply,
});
const workload = (requests: RequestSpec[], crlf = false): Workload => ({
  requests,
  greeting: [],
  crlf,
});

interface Outcome {
  completed: number;
  wrong: string[];
  fatal: string[];
}

/** Feeds `stream` cut at `cuts`, with `sent` requests outstanding. */
function verify(work: Workload, sent: number, stream: string, cuts: number[]): Outcome {
  const plan = planWorkload(work, { connections: 1, overhang: 4096 });
  const outcome: Outcome = { completed: 0, wrong: [], fatal: [] };
  const verifier = createVerifier(plan, 0, {
    sent,
    mismatch: (message) => outcome.wrong.push(message),
    fatal: (message) => outcome.fatal.push(message),
  });
  const bytes = encode(stream);
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const point of [...points, bytes.length]) {
    if (point <= from) continue;
    outcome.completed += verifier.consume(bytes.slice(from, point));
    from = point;
  }
  return outcome;
}

const cuts = fc.array(fc.nat(), { maxLength: 8 });

Deno.test("tape mode: PONGs under any chunking, one wrong reply counted once", () => {
  const work = workload([request("PING", exact("PONG"))]);
  assert.equal(planWorkload(work, { connections: 1, overhang: 64 }).verify, "tape");
  const stream = "PONG\n".repeat(5) + "PONG AND MORE\n" + "PONG\n".repeat(4);
  fc.assert(fc.property(cuts, (at) => {
    const outcome = verify(work, 10, stream, at);
    assert.equal(outcome.completed, 10);
    assert.equal(outcome.wrong.length, 1, outcome.wrong.join("\n"));
    assert.match(
      outcome.wrong[0]!,
      /^connection 1, request 6 \("PING"\): expected "PONG", got (…)?"/,
    );
    assert.deepEqual(outcome.fatal, []);
  }));
});

Deno.test("tape mode: several requests, multi-line replies, CRLF", () => {
  const work = workload([
    request("A", exact("a1"), exact("a2")),
    request("B", exact("b")),
  ], true);
  const plan = planWorkload(work, { connections: 1, overhang: 64 });
  assert.equal(plan.verify, "tape");
  assert.ok(plan.replyLineIndex, "replies of several lines are indexed");
  const right = "a1\r\na2\r\nb\r\n".repeat(3);
  const wrong = "a1\r\nXX\r\nb\r\n" + "a1\r\na2\r\nb\r\n" + "a1\r\na2\r\nB\r\n";
  fc.assert(fc.property(cuts, (at) => {
    assert.deepEqual(verify(work, 6, right, at), { completed: 6, wrong: [], fatal: [] });
    const outcome = verify(work, 6, wrong, at);
    assert.equal(outcome.completed, 6);
    assert.equal(outcome.wrong.length, 2, outcome.wrong.join("\n"));
    assert.match(outcome.wrong[0]!, /^connection 1, request 1 \("A"\): expected "a2"/);
    assert.match(outcome.wrong[1]!, /^connection 1, request 6 \("B"\): expected "b"/);
  }));
});

Deno.test("tape mode: data with no request outstanding ends the connection", () => {
  const work = workload([request("PING", exact("PONG"))]);
  const outcome = verify(work, 2, "PONG\nPONG\nPONG\n", []);
  assert.equal(outcome.completed, 2);
  assert.deepEqual(outcome.fatal, ['data arrived with no request outstanding: "PONG\\n"']);
});

Deno.test("echo-test's lines: a difference is told by its stream byte", () => {
  const work: Workload = { requests: [], greeting: [], crlf: false, echoSizes: { min: 8, max: 8 } };
  const plan = planWorkload(work, { connections: 1, overhang: 4096 });
  assert.equal(plan.byteAligned, true);
  const lines = Array.from(
    { length: 4 },
    (_, k) => new TextDecoder().decode(plan.request(k).line.render(1, 1)) + "\n",
  );
  const stream = lines.join("");
  const corrupted = stream.slice(0, 19) + (stream[19] === "a" ? "b" : "a") + stream.slice(20);
  fc.assert(fc.property(cuts, (at) => {
    assert.deepEqual(verify(work, 4, stream, at), { completed: 4, wrong: [], fatal: [] });
    const outcome = verify(work, 4, corrupted, at);
    assert.equal(outcome.completed, 4);
    assert.equal(outcome.wrong.length, 1);
    assert.match(
      outcome.wrong[0]!,
      /^connection 1, line 3: byte 19 of the stream differs \(expected 0x[0-9a-f]{2}, got 0x6[12]\)$/,
    );
  }));
  assert.deepEqual(verify(work, 1, stream.slice(0, 12), []).fatal, [
    "received 4 bytes more than were sent",
  ]);
});

Deno.test("count mode: any lines are counted, N per request", () => {
  const work = workload([
    request("A", { kind: "any" }, { kind: "any" }),
    request("B", { kind: "any" }),
  ]);
  assert.equal(planWorkload(work, { connections: 1, overhang: 64 }).verify, "count");
  fc.assert(fc.property(cuts, (at) => {
    assert.deepEqual(verify(work, 4, "x\ny\nz\n\nw\n\n", at), {
      completed: 4,
      wrong: [],
      fatal: [],
    });
  }));
  assert.deepEqual(verify(work, 1, "x\ny\nz\n", []).fatal, [
    "1 line(s) arrived with no request outstanding",
  ]);
});

Deno.test("lines mode: regular expressions, JSON with ids, sets, placeholders", () => {
  const work = workload([
    request('{"id":${seq}}', { kind: "json", source: '{"id":${seq}}' }),
    request("R${conn}", { kind: "regex", source: "^r\\d$" }),
    request("S", { kind: "set", lines: [LineTemplate.fromText("x"), LineTemplate.fromText("y")] }),
    request("E${seq}", exact("e${seq}")),
  ]);
  assert.equal(planWorkload(work, { connections: 1, overhang: 64 }).verify, "lines");
  const right = '{"id":1,"ok":true}\nr1\ny\nx\ne4\n';
  const wrong = '{"id":2}\nR1\ny\nz\ne5\n';
  fc.assert(fc.property(cuts, (at) => {
    assert.deepEqual(verify(work, 4, right, at), { completed: 4, wrong: [], fatal: [] });
    const outcome = verify(work, 4, wrong, at);
    assert.equal(outcome.completed, 4);
    assert.deepEqual(outcome.wrong, [
      'connection 1, request 1 ("{\\"id\\":1}"): expected JSON containing {"id":1}, got "{\\"id\\":2}"',
      'connection 1, request 2 ("R1"): expected a line matching /^r\\d$/, got "R1"',
      'connection 1, request 3 ("S"): expected one of "x", got "z"',
      'connection 1, request 4 ("E4"): expected "e4", got "e5"',
    ]);
  }));
});

Deno.test("lines mode: a line longer than --max-line ends the connection", () => {
  const work = workload([request("A", { kind: "regex", source: "." })]);
  const plan = planWorkload(work, { connections: 1, overhang: 64 });
  const fatal: string[] = [];
  const verifier = createVerifier(plan, 0, {
    sent: 1,
    mismatch: () => {},
    fatal: (message) => fatal.push(message),
  }, 16);
  verifier.consume(encode("0123456789"));
  verifier.consume(encode("0123456789\n"));
  assert.deepEqual(fatal, ["a reply line is longer than 16 bytes (--max-line)"]);
});
