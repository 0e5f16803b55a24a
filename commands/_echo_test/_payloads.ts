/**
 * The byte patterns of the echo conformance cases: deterministic, so a failure can be reproduced and
 * its offset explained.
 *
 * @module
 */
const encoder = new TextEncoder();

/** A line of `length` bytes (its `\n` included) of printable ASCII that never repeats in step. */
export function patternLine(length: number, seed: number): Uint8Array {
  const line = new Uint8Array(length);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length - 1; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    line[i] = 0x21 + ((state >>> 0) % 94);
  }
  if (length > 0) line[length - 1] = 0x0a;
  return line;
}

/**
 * `count` lines `<label> line N <filler>` with varied lengths (up to about `maxLength` bytes), so each
 * line is unique and a lost, repeated or foreign line is caught.
 */
export function numberedLines(
  label: string,
  count: number,
  seed: number,
  maxLength = 200,
): Uint8Array {
  const lines: Uint8Array[] = [];
  let state = seed;
  for (let n = 1; n <= count; n++) {
    state = (state * 1103515245 + 12345) >>> 0;
    const head = encoder.encode(`${label} ${n} `);
    const fill = patternLine(1 + (state % Math.max(1, maxLength - head.length)), state);
    const line = new Uint8Array(head.length + fill.length);
    line.set(head);
    line.set(fill, head.length);
    lines.push(line);
  }
  return concat(lines);
}

/**
 * Short lines of ASCII with a 2-, a 3- and a 4-byte character placed so that each one starts on the
 * last byte before a buffer boundary (at 1, 2 and 3 buffers). No line is longer than about half a
 * buffer, so servers with a line limit of one buffer are judged on the splitting alone.
 */
export function utf8AcrossBoundaries(bufferSize: number): Uint8Array {
  const characters = ["\u00e9", "\u20ac", "\u{1F600}"];
  const half = Math.max(2, Math.floor(bufferSize / 2));
  const parts: Uint8Array[] = [];
  let position = 0;
  characters.forEach((character, index) => {
    const startAt = (index + 1) * bufferSize - 1;
    while (startAt - position > half) {
      const filler = patternLine(half, position + 11);
      parts.push(filler);
      position += filler.length;
    }
    const head = patternLine(startAt - position + 1, position + 13).subarray(0, startAt - position);
    const line = concat([head, encoder.encode(`${character} ok\n`)]);
    parts.push(line);
    position += line.length;
  });
  return concat(parts);
}

export function invalidUtf8Lines(): Uint8Array {
  return new Uint8Array([
    ...encoder.encode("lone 0xff: "),
    0xff,
    0x0a,
    ...encoder.encode("overlong slash: "),
    0xc0,
    0xaf,
    0x0a,
    ...encoder.encode("surrogate: "),
    0xed,
    0xa0,
    0x80,
    0x0a,
    ...encoder.encode("truncated euro: "),
    0xe2,
    0x82,
    0x0a,
    ...encoder.encode("nul: "),
    0x00,
    0x0a,
    0xfe,
    0xfe,
    0x0a,
  ]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const result = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}
