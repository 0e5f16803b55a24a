/**
 * Internal: what one instance tells the others about a room, on the room's bus subject. A header
 * line in ASCII, then the line to deliver, byte for byte:
 *
 * ```
 * M <instance> <member> <seq>\n<line>     a line for the room's members (already formatted)
 * Q <instance> <member> <seq>\n           the member is gone: forget its sequence
 * ```
 *
 * `instance` tells an instance its own messages apart (no echo); `member` and `seq` (one counter
 * per member, over all its rooms) let a receiver drop a message it has seen already and keep each
 * sender's lines in order.
 *
 * @module
 */

/** A decoded bus message. */
export interface BusMessage {
  /** `M`: a line for the members; `Q`: the member is gone. */
  readonly kind: "M" | "Q";
  /** The sending instance's id. */
  readonly instance: string;
  /** The member's number on its instance. */
  readonly member: number;
  /** The member's message counter. */
  readonly seq: number;
  /** The line (a view of the message's bytes). */
  readonly line: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LF = 0x0a;
/** The longest header: kind, a 32-character instance id and two 16-digit numbers. */
const MAX_HEADER = 80;

/**
 * Encodes a message.
 * @returns A new buffer (the bus may keep it after the call).
 */
export function encodeBusMessage(
  kind: "M" | "Q",
  instance: string,
  member: number,
  seq: number,
  line: Uint8Array,
): Uint8Array {
  const header = `${kind} ${instance} ${member} ${seq}\n`;
  const bytes = new Uint8Array(header.length + line.length);
  encoder.encodeInto(header, bytes);
  bytes.set(line, header.length);
  return bytes;
}

/**
 * Decodes a message.
 * @returns The message, or `undefined` when the bytes are not one (another program's traffic).
 */
export function decodeBusMessage(bytes: Uint8Array): BusMessage | undefined {
  const end = bytes.subarray(0, MAX_HEADER).indexOf(LF);
  if (end === -1) return undefined;
  const parts = decoder.decode(bytes.subarray(0, end)).split(" ");
  if (parts.length !== 4) return undefined;
  const [kind, instance, member, seq] = parts as [string, string, string, string];
  if ((kind !== "M" && kind !== "Q") || instance === "") return undefined;
  const memberNumber = Number(member);
  const seqNumber = Number(seq);
  if (!Number.isSafeInteger(memberNumber) || !Number.isSafeInteger(seqNumber)) return undefined;
  return { kind, instance, member: memberNumber, seq: seqNumber, line: bytes.subarray(end + 1) };
}
