/**
 * Scale-out behind a real L4 load balancer: HAProxy on loopback (mode tcp, balance roundrobin) in
 * front of two `linesock serve --proxy-protocol` processes, one fed PROXY v1 (`send-proxy`), the other
 * v2 (`send-proxy-v2`). Connections must be spread over both instances, and each instance must log the
 * original client's address (127.0.0.1 with the client's own source port), not HAProxy's.
 *
 * Ignored, with the reason in its name, when `haproxy` is not installed (`.ci/run` installs Debian's).
 */
import assert from "node:assert/strict";
import { startServer } from "../_support/cli.ts";
import { LineSession } from "../_support/line_session.ts";
import { unusedPort } from "../_support/ports.ts";
import { ignoredName } from "../_support/tools.ts";
import { startDaemon } from "../_support/process.ts";

async function haproxyVersion(): Promise<string | undefined> {
  try {
    const output = await new Deno.Command("haproxy", { args: ["-v"], stdout: "piped" }).output();
    return output.success ? new TextDecoder().decode(output.stdout).split("\n")[0] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts HAProxy in the foreground, master-worker mode (`-W -db`), and waits (bounded) for the
 * master's "Loading success.", which it prints once a worker reports ready: the listeners are bound
 * by then. (`-V`'s "Using epoll() as the polling mechanism" comes before the bind: a test that waited
 * for it raced HAProxy's bind and lost on a loaded CI machine.)
 */
function startHaproxy(configPath: string): Promise<AsyncDisposable> {
  return startDaemon("haproxy", {
    args: ["-W", "-db", "-f", configPath],
    ready: "Loading success.",
  });
}

const version = await haproxyVersion();

Deno.test({
  name: ignoredName(
    "linesock behind HAProxy",
    version === undefined ? "haproxy is not installed" : undefined,
  ),
  ignore: version === undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "linesock-haproxy-" });
    try {
      const args = ["--port", "0", "--proxy-protocol", "--log-format", "json", "--name"];
      await using first = await startServer([...args, "one"]);
      await using second = await startServer([...args, "two"]);
      const config = `${dir}/haproxy.cfg`;
      const writeConfig = (frontPort: number) =>
        Deno.writeTextFile(
          config,
          [
            "global",
            "  maxconn 200",
            "defaults",
            "  mode tcp",
            "  timeout connect 2s",
            "  timeout client 10s",
            "  timeout server 10s",
            "frontend front",
            `  bind 127.0.0.1:${frontPort}`,
            "  default_backend linesock",
            "backend linesock",
            "  balance roundrobin",
            `  server one 127.0.0.1:${first.port} send-proxy`,
            `  server two 127.0.0.1:${second.port} send-proxy-v2`,
            "",
          ].join("\n"),
        );
      // A port can still be taken between the check and HAProxy's bind: then try another one.
      let frontPort = 0;
      let haproxy: AsyncDisposable | undefined;
      for (let attempt = 1; haproxy === undefined; attempt++) {
        frontPort = unusedPort();
        await writeConfig(frontPort);
        try {
          haproxy = await startHaproxy(config);
        } catch (error) {
          if (attempt === 3) throw error;
        }
      }
      await using _haproxy = haproxy;

      const clientPorts: number[] = [];
      const answeredBy = new Map<string, number>();
      await t.step("20 connections through HAProxy are answered by both instances", async () => {
        for (let index = 0; index < 20; index++) {
          await using session = await LineSession.open(frontPort);
          clientPorts.push((session.conn.localAddr as Deno.NetAddr).port);
          const [name] = await session.exchange(["HELLO"]);
          answeredBy.set(name!, (answeredBy.get(name!) ?? 0) + 1);
        }
        // roundrobin: one each in turn.
        assert.deepEqual(Object.fromEntries(answeredBy), { one: 10, two: 10 });
      });

      await t.step("each instance logs the clients' own addresses (v1 and v2)", async () => {
        const peers = new Set<string>();
        for (const server of [first, second]) {
          const result = await server.stop("SIGTERM", 15_000);
          assert.equal(result.code, 0, result.stderr);
          const opened = result.stderr.split("\n").filter((line) => line.startsWith("{"))
            .map((line) => JSON.parse(line))
            .filter((record) => /opened/.test(record.message));
          assert.equal(opened.length, 10, result.stderr);
          for (const record of opened) peers.add(record.properties.peer);
        }
        assert.deepEqual(
          [...peers].sort(),
          clientPorts.map((port) => `127.0.0.1:${port}`).sort(),
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
