import assert from "node:assert/strict";
import {
  ConnectError,
  ConnectionLostError,
  InvalidEncodingError,
  LinesockError,
  type LinesockErrorCode,
  LineTooLongError,
  RemoteError,
  TimeoutError,
} from "../../lib/errors.ts";

Deno.test("errors", async (t) => {
  await t.step("every class has its stable code, its own name, and is a LinesockError", () => {
    const cases: [Error, LinesockErrorCode, string][] = [
      [new LineTooLongError(8, 2), "LINE_TOO_LONG", "LineTooLongError"],
      [
        new InvalidEncodingError(Uint8Array.of(0xff), 3),
        "INVALID_ENCODING",
        "InvalidEncodingError",
      ],
      [new ConnectError("127.0.0.1:1991", "connection refused"), "CANNOT_CONNECT", "ConnectError"],
      [new TimeoutError("connect", 100), "TIMEOUT", "TimeoutError"],
      [new RemoteError("no such command"), "REMOTE_ERROR", "RemoteError"],
      [new ConnectionLostError(), "CONNECTION_LOST", "ConnectionLostError"],
    ];
    assert.equal(new Set(cases.map(([, code]) => code)).size, cases.length);
    for (const [error, code, name] of cases) {
      assert.ok(error instanceof LinesockError, name);
      assert.ok(error instanceof Error, name);
      assert.equal((error as LinesockError).code, code);
      assert.equal(error.name, name);
      assert.ok(error.stack?.includes(name), `${name} has a stack`);
    }
  });

  await t.step("LineTooLongError carries the limit and the line number", () => {
    const error = new LineTooLongError(1024, 7);
    assert.equal(error.limit, 1024);
    assert.equal(error.lineNumber, 7);
    assert.equal(error.message, "Line 7 is longer than the limit of 1024 bytes");
  });

  await t.step("InvalidEncodingError carries the bytes and the line number", () => {
    const bytes = Uint8Array.of(0x61, 0xff);
    const error = new InvalidEncodingError(bytes, 4);
    assert.equal(error.bytes, bytes);
    assert.equal(error.lineNumber, 4);
    assert.equal(error.message, "Line 4 is not valid UTF-8");
    assert.equal(new InvalidEncodingError(bytes).lineNumber, 0);
    assert.equal(new InvalidEncodingError(bytes).message, "Line is not valid UTF-8");
  });

  await t.step("ConnectError names the target and keeps the cause", () => {
    const cause = new Deno.errors.ConnectionRefused("refused");
    const error = new ConnectError("127.0.0.1:1991", "connection refused", { cause });
    assert.equal(error.target, "127.0.0.1:1991");
    assert.equal(error.message, "Cannot connect to 127.0.0.1:1991: connection refused");
    assert.equal(error.cause, cause);
  });

  await t.step("TimeoutError carries its budget", () => {
    const error = new TimeoutError("connect to 127.0.0.1:1991", 250);
    assert.equal(error.timeoutMs, 250);
    assert.equal(error.message, "Timed out after 250 ms: connect to 127.0.0.1:1991");
  });

  await t.step("RemoteError carries status and extra, with status 1 for text replies", () => {
    const text = new RemoteError("unknown command");
    assert.equal(text.message, "unknown command");
    assert.equal(text.status, 1);
    assert.equal(text.extra, undefined);
    const json = new RemoteError("bad request", 22, { field: "x" });
    assert.equal(json.status, 22);
    assert.deepEqual(json.extra, { field: "x" });
  });

  await t.step("ConnectionLostError has a default message and accepts its own", () => {
    assert.equal(
      new ConnectionLostError().message,
      "Connection closed by the server before the expected replies",
    );
    assert.equal(new ConnectionLostError("gone").message, "gone");
  });

  await t.step("a subclass of LinesockError gets its own name", () => {
    class CustomError extends LinesockError {}
    const error = new CustomError("TIMEOUT", "custom");
    assert.equal(error.name, "CustomError");
    assert.equal(error.code, "TIMEOUT");
  });
});
