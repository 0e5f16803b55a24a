/**
 * Reading everything a connection, a transport or a stream carries, up to its end: bounded in time
 * and in bytes.
 *
 * @module
 */
import { within } from "./timeouts.ts";

/** Anything with `read(buffer)` (a `Deno.Conn`, a client `Transport`). */
export interface ByteReader {
  /** Copies what arrived into `buffer`; `null` at the end. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Bounds of {@linkcode readToEnd}. */
export interface ReadBounds {
  /** Give up after this long. @default {10000} */
  ms?: number;
  /** Fail beyond this many bytes. @default {64 MiB} */
  limit?: number;
}

/**
 * Every byte of `source` up to its end (a connection reset ends it too).
 * @param source A reader (read with `read()`, not its `readable`, which would close it) or a stream.
 * @param bounds Time and size bounds.
 * @returns The bytes.
 */
export async function readToEnd(
  source: ByteReader | ReadableStream<Uint8Array>,
  bounds: ReadBounds = {},
): Promise<Uint8Array> {
  const limit = bounds.limit ?? 64 * 1024 * 1024;
  const parts: Uint8Array[] = [];
  let total = 0;
  const keep = (chunk: Uint8Array) => {
    parts.push(chunk);
    total += chunk.length;
    if (total > limit) throw new Error(`more than ${limit} bytes before the end`);
  };
  const reading = (async () => {
    try {
      if (source instanceof ReadableStream) {
        for await (const chunk of source) keep(chunk);
      } else {
        const buffer = new Uint8Array(64 * 1024);
        for (let count; (count = await source.read(buffer)) !== null;) {
          keep(buffer.slice(0, count));
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    }
  })();
  await within(reading, bounds.ms ?? 10_000, "the end of the stream");
  const all = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

/** Like {@linkcode readToEnd}, decoded as UTF-8. */
export async function readTextToEnd(
  source: ByteReader | ReadableStream<Uint8Array>,
  bounds: ReadBounds = {},
): Promise<string> {
  return new TextDecoder().decode(await readToEnd(source, bounds));
}
