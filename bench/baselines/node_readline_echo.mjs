/**
 * Node.js net + readline line echo server — a benchmark baseline.
 *
 * The classic Node recipe: `net.createServer`, wrap each socket with
 * `readline.createInterface`, and `socket.write(line + "\n")` once per line.
 *
 * Usage: node bench/baselines/node_readline_echo.mjs [--port N] [--host H]
 *
 * `--port 0` (the default) picks a free port. The first stdout line is
 * exactly `listening on tcp://HOST:PORT`. Serves until SIGINT/SIGTERM.
 */
import net from "node:net";
import readline from "node:readline";

function parseArgs(args) {
  let host = "127.0.0.1";
  let port = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`missing value for ${arg}`);
      return v;
    };
    if (arg === "--port") port = Number(value());
    else if (arg.startsWith("--port=")) port = Number(arg.slice(7));
    else if (arg === "--host") host = value();
    else if (arg.startsWith("--host=")) host = arg.slice(7);
    else throw new Error(`unknown argument: ${arg}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid --port: ${port}`);
  }
  return { host, port };
}

const { host, port } = parseArgs(process.argv.slice(2));

const server = net.createServer((socket) => {
  socket.on("error", () => socket.destroy());
  const rl = readline.createInterface({ input: socket, crlfDelay: Infinity });
  rl.on("line", (line) => {
    socket.write(line + "\n");
  });
  rl.on("close", () => socket.end());
});

server.listen(port, host, () => {
  const addr = server.address();
  process.stdout.write(`listening on tcp://${addr.address}:${addr.port}\n`);
});

const shutdown = () => {
  server.close();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
