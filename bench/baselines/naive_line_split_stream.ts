/**
 * The naive recipe's line splitter, shared by the naive echo server and the splitter benchmark so both
 * measure the same baseline: decoded text is split on "\n" with string operations.
 *
 * @module
 */

/** Splits a stream of text chunks into lines (without the trailing "\n"). */
export class NaiveLineSplitStream extends TransformStream<string, string> {
  /** Creates the stream. */
  constructor() {
    let buffer = "";
    super({
      transform(chunk, controller) {
        buffer += chunk;
        const lines = buffer.split("\n");
        buffer = lines.pop() ?? "";
        for (const line of lines) controller.enqueue(line);
      },
      flush(controller) {
        if (buffer.length > 0) controller.enqueue(buffer);
      },
    });
  }
}
