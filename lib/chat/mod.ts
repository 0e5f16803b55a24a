/**
 * The rooms of the chat protocol (`lib/protocols/chat.ts`): {@linkcode RoomHub} (who is in which
 * room, and a line's way to the others), {@linkcode ChatMember} (one client, and the queue policy
 * that keeps a slow reader from holding the others up), and {@linkcode ChatBus} with
 * {@linkcode connectChatBus} (rooms that span instances through NATS; the NATS client loads only
 * when a bus is connected).
 *
 * May import: `lib/errors.ts`, `lib/framing/`, `lib/server/` (its types).
 *
 * @example The counters of a raw relay
 * ```ts
 * import { chatProtocol } from "@linesock/linesock/protocols";
 * import assert from "node:assert/strict";
 *
 * await using relay = chatProtocol({ raw: true, maxQueueBytes: 64 * 1024 });
 * assert.equal(relay.stats.delivered, 0);
 * assert.equal(relay.stripCR, false);
 * ```
 *
 * @module
 */
export * from "./names.ts";
export * from "./member.ts";
export * from "./room_hub.ts";
export * from "./bus.ts";
