/**
 * The echo protocol: every byte comes back exactly as sent, `\r`, NUL and invalid UTF-8 included, and
 * a final line without `\n` too. It relays chunks instead of framing lines, so a line of any length
 * streams through with bounded memory and no line limit applies.
 *
 * @example Serving echo
 * ```ts
 * import { echoProtocol, serve } from "@linesock/linesock";
 * import assert from "node:assert/strict";
 *
 * await using server = await serve({ port: 0 }, echoProtocol());
 * const conn = await Deno.connect({ port: (server.addr as Deno.NetAddr).port });
 * await conn.write(new Uint8Array([0x61, 0x0d, 0x0a, 0xff, 0x62]));
 * await conn.closeWrite();
 * const echoed = await new Response(conn.readable).bytes();
 * assert.deepEqual([...echoed], [0x61, 0x0d, 0x0a, 0xff, 0x62]);
 * ```
 *
 * @module
 */
import type { LineProtocol } from "../server/protocol.ts";

/**
 * Creates the byte-exact echo protocol.
 * @returns A protocol for {@linkcode serve}.
 */
export function echoProtocol(): LineProtocol {
  return {
    stripCR: false,
    onLine(line) {
      return line;
    },
    onData(chunk, context) {
      context.sendRaw(chunk);
    },
  };
}
