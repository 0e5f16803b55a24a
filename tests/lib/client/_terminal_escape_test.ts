import assert from "node:assert/strict";
import fc from "fast-check";
import {
  escapeControlBytes,
  escapeControls,
  hasControls,
} from "../../../lib/client/_terminal_escape.ts";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Whether a UTF-16 code unit is one a terminal acts on (what must never be printed as is). */
const isTerminalControl = (code: number) =>
  (code < 0x20 && code !== 0x09) || code === 0x7f || (code >= 0x80 && code <= 0x9f);

/** Text rich in controls, escape sequences and multi-byte characters. */
const hostileText = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0, max: 0xa0 }).map((code) => String.fromCharCode(code)),
    fc.constantFrom("\x1b[2J", "\x1b]0;t\x07", "\x1b]52;c;eA==\x07", "\u009b31m", "é", "✓", "😀"),
    fc.string({ unit: "binary", maxLength: 3 }),
  ),
  maxLength: 60,
});

const C1_IN_UTF8 = /[\u0080-\u009f]/;

Deno.test("escapeControls", async (t) => {
  await t.step("the attacks of a hostile server become visible text", () => {
    assert.equal(escapeControls("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");
    assert.equal(escapeControls("\x1b[2J"), "\\x1b[2J");
    assert.equal(escapeControls("\x1b[31mhost> \x1b[0m"), "\\x1b[31mhost> \\x1b[0m");
    assert.equal(
      escapeControls("\x1b]52;c;cHduZWQ=\x07"),
      "\\x1b]52;c;cHduZWQ=\\x07",
    );
    assert.equal(escapeControls("\u009b2J"), "\\u009b2J");
    assert.equal(escapeControls("a\rb\nc\0d\x7f"), "a\\x0db\\x0ac\\x00d\\x7f");
  });

  await t.step(
    "TAB, backslashes and printable Unicode are kept; clean text is returned as is",
    () => {
      const text = "tab\there \\x1b is literal é ✓ 😀 \u00a0\u00ff";
      assert.equal(escapeControls(text), text);
      assert.equal(hasControls(text), false);
      assert.equal(hasControls("a\x1bb"), true);
      assert.equal(hasControls("\u0085"), true);
    },
  );

  await t.step("property: the output never holds a C0 control but TAB, DEL or a C1 control", () => {
    fc.assert(
      fc.property(hostileText, (text) => {
        const shown = escapeControls(text);
        for (let i = 0; i < shown.length; i++) {
          assert.ok(!isTerminalControl(shown.charCodeAt(i)), JSON.stringify(shown));
        }
        assert.equal(hasControls(shown), false);
        assert.equal(hasControls(text), shown !== text);
      }),
      { numRuns: 2000 },
    );
  });

  await t.step("property: text without controls comes back unchanged", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (any) => {
        const text = [...any].filter((char) => !isTerminalControl(char.charCodeAt(0))).join("");
        assert.equal(escapeControls(text), text);
      }),
      { numRuns: 2000 },
    );
  });
});

Deno.test("escapeControlBytes", async (t) => {
  await t.step("controls, C1 and bytes that are not UTF-8 are escaped", () => {
    const line = new Uint8Array([
      ...encoder.encode("a\x1b[2J"),
      0xc2,
      0x9b, // U+009B
      0x9b, // a lone continuation byte
      0xff,
      0xe2,
      0x82, // a cut-short sequence
      ...encoder.encode("é\tb"),
    ]);
    assert.equal(
      strictDecoder.decode(escapeControlBytes(line)),
      "a\\x1b[2J\\u009b\\x9b\\xff\\xe2\\x82é\tb",
    );
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    const bad = new Uint8Array([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80]);
    assert.equal(
      strictDecoder.decode(escapeControlBytes(bad)),
      "\\xc0\\xaf\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80",
    );
  });

  await t.step("clean bytes (ASCII or valid UTF-8) are returned as they are", () => {
    for (const text of ["PONG", "", "héllo ✓ 😀\ttab", "\u00a0\u07ff\uffff\u{10ffff}"]) {
      const bytes = encoder.encode(text);
      assert.equal(escapeControlBytes(bytes), bytes);
    }
  });

  await t.step("property: safe, valid UTF-8 output for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const shown = escapeControlBytes(bytes);
        for (const byte of shown) {
          assert.ok(byte >= 0x20 || byte === 0x09, `byte ${byte}`);
          assert.notEqual(byte, 0x7f);
        }
        const text = strictDecoder.decode(shown);
        assert.ok(!C1_IN_UTF8.test(text), text);
      }),
      { numRuns: 3000 },
    );
  });

  await t.step("property: for valid UTF-8 the same as escapeControls on the text", () => {
    fc.assert(
      fc.property(hostileText, (any) => {
        const text = any.toWellFormed();
        const bytes = encoder.encode(text);
        const shown = escapeControlBytes(bytes);
        assert.equal(strictDecoder.decode(shown), escapeControls(text));
        if (!hasControls(text)) assert.equal(shown, bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
