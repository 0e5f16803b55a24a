/**
 * Line framing throughput: {@linkcode LineSplitter} (and {@linkcode LineFramer} without a stream, as
 * the server uses it) against the naive recipe, `TextDecoderStream` + a string-splitting
 * `TransformStream`, in the same run.
 *
 * Each iteration frames 16 MiB of input in pre-built 64 KiB chunks. Lines are 64 B or 4 KiB of
 * printable ASCII plus `\n`, so chunk boundaries fall inside lines as they do on a socket. Every case
 * counts its lines and checks the count, so no case can win by skipping work.
 *
 * Run: `deno bench --allow-all bench/line_splitter_bench.ts`; lines/s = lines per iteration / time per
 * iteration (see docs/benchmarks.md).
 *
 * @module
 */
import { NaiveLineSplitStream } from "./baselines/naive_line_split_stream.ts";
import { decodeLine } from "../lib/framing/line_decoder.ts";
import { LineDecoderStream } from "../lib/framing/line_decoder_stream.ts";
import { LineFramer } from "../lib/framing/line_framer.ts";
import { LineSplitter } from "../lib/framing/line_splitter.ts";

const INPUT_BYTES = 16 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const ITERATIONS = 30;
const WARMUP = 5;

interface Workload {
  /** Bytes per line, without the `\n`. */
  lineBytes: number;
  /** Complete lines in the input. */
  lines: number;
  chunks: Uint8Array[];
}

/** 16 MiB of `lineBytes`-byte lines (+ `\n`), cut into separate 64 KiB chunks. */
function workload(lineBytes: number): Workload {
  const record = lineBytes + 1;
  const lines = Math.floor(INPUT_BYTES / record);
  const input = new Uint8Array(lines * record);
  for (let i = 0; i < input.length; i++) input[i] = (i + 1) % record === 0 ? 0x0a : 0x21 + i % 94;
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < input.length; offset += CHUNK_BYTES) {
    chunks.push(input.slice(offset, offset + CHUNK_BYTES));
  }
  return { lineBytes, lines, chunks };
}

function expectCount(actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`counted ${actual} lines, expected ${expected}`);
}

async function countStream(readable: ReadableStream<unknown>): Promise<number> {
  let count = 0;
  for await (const _ of readable) count++;
  return count;
}

for (const { lineBytes, lines, chunks } of [workload(64), workload(4096)]) {
  const group = `${lineBytes === 64 ? "64 B" : "4 KiB"} lines (${lines} lines, 16 MiB)`;
  const common = { group, n: ITERATIONS, warmup: WARMUP };

  Deno.bench({
    ...common,
    name: `naive TextDecoderStream + string split, ${group}`,
    baseline: true,
    async fn() {
      const text = ReadableStream.from(chunks)
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new NaiveLineSplitStream());
      expectCount(await countStream(text), lines);
    },
  });

  Deno.bench({
    ...common,
    name: `LineSplitter (bytes), ${group}`,
    async fn() {
      expectCount(
        await countStream(ReadableStream.from(chunks).pipeThrough(new LineSplitter())),
        lines,
      );
    },
  });

  Deno.bench({
    ...common,
    name: `LineSplitter + LineDecoderStream (strings), ${group}`,
    async fn() {
      const text = ReadableStream.from(chunks)
        .pipeThrough(new LineSplitter())
        .pipeThrough(new LineDecoderStream());
      expectCount(await countStream(text), lines);
    },
  });

  Deno.bench({
    ...common,
    name: `LineFramer.push (bytes, no stream), ${group}`,
    fn() {
      let count = 0;
      const framer = new LineFramer({}, { onLine: () => count++ });
      for (const chunk of chunks) framer.push(chunk);
      framer.end();
      expectCount(count, lines);
    },
  });

  Deno.bench({
    ...common,
    name: `LineFramer.push + decodeLine (strings, no stream), ${group}`,
    fn() {
      let count = 0;
      let characters = 0;
      const framer = new LineFramer({}, {
        onLine: (bytes, lineNumber) => {
          characters += decodeLine(bytes, lineNumber).length;
          count++;
        },
      });
      for (const chunk of chunks) framer.push(chunk);
      framer.end();
      expectCount(count, lines);
      expectCount(characters, lines * lineBytes);
    },
  });
}

// One 16 MiB line in 64 KiB chunks: the naive recipe re-scans its growing buffer on every chunk
// (quadratic); the splitter scans each byte once. The limit is lifted so that the line is kept.
{
  const { chunks } = workload(INPUT_BYTES - 1);
  const group = "one 16 MiB line (no limit)";
  const common = { group, n: 5, warmup: 1 };

  Deno.bench({
    ...common,
    name: `naive TextDecoderStream + string split, ${group}`,
    baseline: true,
    async fn() {
      const text = ReadableStream.from(chunks)
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new NaiveLineSplitStream());
      expectCount(await countStream(text), 1);
    },
  });

  Deno.bench({
    ...common,
    name: `LineSplitter (bytes), ${group}`,
    async fn() {
      const splitter = new LineSplitter({ maxLineBytes: Infinity });
      expectCount(await countStream(ReadableStream.from(chunks).pipeThrough(splitter)), 1);
    },
  });
}
