/**
 * What the exec and chat protocols report for the server's metrics (`LineProtocol.metrics`): an
 * `--exec` program is counted in `linesock_programs_running` while it runs and its histogram is
 * labelled `protocol="exec"`; the chat's counters (lines delivered and dropped, too-slow
 * disconnects, the bus) are families of their own, which `promtool check metrics` accepts. Through
 * the library and through `linesock serve --metrics`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { formatPrometheus } from "../../../lib/metrics/mod.ts";
import { addMetrics, emptyMetrics, serve } from "../../../lib/server/mod.ts";
import { execProtocol } from "../../../lib/protocols/exec.ts";
import { chatProtocol } from "../../../lib/protocols/chat.ts";
import { LineSession } from "../../_support/line_session.ts";
import { startServer, within } from "../../_support/cli.ts";
import { WAIT_MS, waitUntil } from "../../_support/timeouts.ts";
import { ignoredName } from "../../_support/tools.ts";
import { PROMTOOL_MISSING, promtoolCheck, sample } from "../../_support/prometheus.ts";

/** The metrics URL that `serve --metrics` prints on its second stdout line. */
async function scrape(server: { stdoutLines: string[] }): Promise<string> {
  await waitUntil(() => server.stdoutLines.length > 0, WAIT_MS, "the metrics line");
  const url = /^metrics on (http:\/\/\S+)$/.exec(server.stdoutLines[0]!)![1]!;
  const response = await within(fetch(url), WAIT_MS, `GET ${url}`);
  return await response.text();
}

Deno.test("execProtocol reports its programs running", async () => {
  await using server = await serve({ port: 0 }, execProtocol({ argv: ["cat"] }));
  assert.equal(server.metrics().programsRunning, 0);
  await using client = await LineSession.open((server.addr as Deno.NetAddr).port);
  await client.write("x\n");
  assert.equal(await client.readLine(), "x");
  assert.equal(server.metrics().programsRunning, 1);
  assert.equal(server.metrics().programsWaiting, 0);
  client.close();
  await waitUntil(() => server.metrics().programsRunning === 0, WAIT_MS, "the program reaped");
});

Deno.test("chatProtocol reports its counters; workers' are added up", async () => {
  await using chat = chatProtocol();
  await using server = await serve({ port: 0 }, chat);
  const port = (server.addr as Deno.NetAddr).port;
  await using alice = await LineSession.open(port);
  await alice.readLine();
  await using bob = await LineSession.open(port);
  await bob.readLine();
  assert.match((await alice.readLine())!, /joined lobby/);
  await alice.write("hi\n");
  assert.match((await bob.readLine())!, /^<guest\d+> hi$/);
  const metrics = server.metrics();
  assert.ok(metrics.chat !== undefined, "chat counters");
  assert.ok(metrics.chat.delivered >= 2, `delivered ${metrics.chat.delivered}`);
  assert.equal(metrics.chat.dropped, 0);
  // No bus: no bus gauge.
  assert.equal(metrics.chat.busConnected, undefined);
  const total = addMetrics(addMetrics(emptyMetrics(), metrics), {
    ...emptyMetrics(),
    chat: { ...metrics.chat, dropped: 3, busConnected: 1 },
  });
  assert.equal(total.chat?.delivered, metrics.chat.delivered * 2);
  assert.equal(total.chat?.dropped, 3);
  assert.equal(total.chat?.busConnected, 1);
});

Deno.test({
  name: ignoredName("the chat's families are valid Prometheus text", PROMTOOL_MISSING),
  ignore: PROMTOOL_MISSING !== undefined,
  async fn() {
    const metrics = emptyMetrics();
    metrics.chat = {
      delivered: 10,
      dropped: 2,
      tooSlow: 1,
      published: 4,
      received: 5,
      duplicates: 1,
      busConnected: 1,
    };
    const text = formatPrometheus(metrics);
    assert.equal(sample(text, "linesock_chat_delivered_lines_total"), 10);
    assert.equal(sample(text, "linesock_chat_dropped_lines_total"), 2);
    assert.equal(sample(text, "linesock_chat_too_slow_disconnects_total"), 1);
    assert.equal(sample(text, "linesock_chat_bus_published_messages_total"), 4);
    assert.equal(sample(text, "linesock_chat_bus_received_messages_total"), 5);
    assert.equal(sample(text, "linesock_chat_bus_duplicate_messages_total"), 1);
    assert.equal(sample(text, "linesock_chat_bus_connected"), 1);
    const { code, output } = await promtoolCheck(text);
    assert.equal(code, 0, output);
    // Without the chat: none of its families.
    assert.doesNotMatch(formatPrometheus(emptyMetrics()), /linesock_chat_/);
  },
});

Deno.test("serve --exec --metrics: the program is counted, the protocol label is exec", async () => {
  await using server = await startServer([
    "--port",
    "0",
    "--metrics",
    "127.0.0.1:0",
    "--exec",
    "--",
    "cat",
  ]);
  await using client = await LineSession.open(server.port);
  await client.write("x\n");
  assert.equal(await client.readLine(), "x");
  const text = await scrape(server);
  assert.equal(sample(text, "linesock_programs_running"), 1);
  assert.match(text, /^linesock_line_handling_seconds_count\{protocol="exec"\} \d+$/m);
  assert.doesNotMatch(text, /protocol="text"/);
});

Deno.test({
  name: ignoredName(
    "serve --protocol chat --routes --metrics: the chat's counters are scraped",
    PROMTOOL_MISSING,
  ),
  ignore: PROMTOOL_MISSING !== undefined,
  async fn() {
    await using server = await startServer([
      "--port",
      "0",
      "--protocol",
      "chat",
      "--routes",
      "examples/protocols/hello.jsonc",
      "--metrics",
      "127.0.0.1:0",
    ]);
    await using alice = await LineSession.open(server.port);
    await alice.readLines(2);
    await using bob = await LineSession.open(server.port);
    await bob.readLines(2);
    await alice.readLine();
    await alice.write("hi\nHELLO\n");
    assert.match((await bob.readLine())!, /^<guest\d+> hi$/);
    assert.match((await alice.readLine())!, /^MSG Hello from /);
    const text = await scrape(server);
    assert.ok(sample(text, "linesock_chat_delivered_lines_total")! >= 1, text);
    assert.equal(sample(text, 'linesock_route_hits_total{route="routes[0]"}'), 1);
    assert.match(text, /^linesock_line_handling_seconds_count\{protocol="chat"\} \d+$/m);
    const { code, output } = await promtoolCheck(text);
    assert.equal(code, 0, output);
  },
});
