/**
 * Opens a page in real headless Chromium and reports what happened, over the DevTools protocol
 * with Deno's own WebSocket (no browser-automation library): Chromium starts with
 * `--remote-debugging-port=0`, its stderr says which port it took, a page target is created and
 * attached to, and the page is loaded. What comes back: every console message and uncaught
 * exception (CSP violations included, through the Log domain), the value of an expression
 * evaluated in the page once it loaded, and a PNG screenshot of the whole page.
 *
 * Every wait is bounded; the browser and its profile folder are removed afterwards.
 *
 * @module
 */
import { toolMissing } from "../../_support/tools.ts";

/** Why Chromium cannot be used here, or `undefined`. */
export const CHROMIUM_MISSING: string | undefined = toolMissing(chromiumPath(), ["--version"]);

function chromiumPath(): string {
  for (const path of ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]) {
    try {
      Deno.statSync(path);
      return path;
    } catch {
      // Not there.
    }
  }
  return "chromium";
}

/** A console message or an exception the page produced. */
export interface PageProblem {
  /** `console.error`, `exception`, `log:error` (CSP, network), … */
  readonly kind: string;
  /** What it said. */
  readonly text: string;
}

/** What loading a page gave. */
export interface PageVisit {
  /** Console errors and warnings, uncaught exceptions, and browser log errors. */
  readonly problems: PageProblem[];
  /** The evaluated expression's value. */
  readonly value: unknown;
  /** The page as a PNG. */
  readonly screenshot: Uint8Array;
}

/** Options of {@linkcode visit}. */
export interface VisitOptions {
  /** An expression evaluated in the page after it loaded (it may be a promise). */
  readonly evaluate: string;
  /** The viewport width. @default {1280} */
  readonly width?: number;
  /** The viewport height. @default {1250} */
  readonly height?: number;
  /** The longest wait for each step, in ms. @default {30000} */
  readonly timeoutMs?: number;
}

/**
 * Loads a page in headless Chromium.
 * @param url The page (`file:///…`).
 * @param options What to evaluate, the viewport, the time limit.
 * @returns Its problems, the value and a screenshot.
 */
export async function visit(url: string, options: VisitOptions): Promise<PageVisit> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const profile = await Deno.makeTempDir({ prefix: "linesock-chromium-" });
  const args = [
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    `--user-data-dir=${profile}`,
    "about:blank",
  ];
  // Chromium refuses to run as root with its sandbox on.
  if (Deno.uid?.() === 0) args.unshift("--no-sandbox");
  const child = new Deno.Command(chromiumPath(), {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let socket: WebSocket | undefined;
  try {
    const browserUrl = await bounded(
      devtoolsUrl(child.stderr),
      timeoutMs,
      "Chromium's DevTools URL",
    );
    socket = new WebSocket(browserUrl);
    const cdp = new Cdp(socket);
    await bounded(cdp.opened, timeoutMs, "the DevTools connection");
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" }) as {
      targetId: string;
    };
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true }) as {
      sessionId: string;
    };
    const page = (method: string, params: Record<string, unknown> = {}) =>
      bounded(cdp.send(method, params, sessionId), timeoutMs, method);
    const problems: PageProblem[] = [];
    cdp.onEvent = (method, params, session) => {
      if (session !== sessionId) return;
      if (method === "Runtime.consoleAPICalled") {
        const { type, args } = params as {
          type: string;
          args: { value?: unknown; description?: string }[];
        };
        if (type === "error" || type === "warning" || type === "assert") {
          problems.push({
            kind: `console.${type}`,
            text: args.map((arg) => String(arg.value ?? arg.description ?? "")).join(" "),
          });
        }
      } else if (method === "Runtime.exceptionThrown") {
        const { exceptionDetails } = params as {
          exceptionDetails: { text: string; exception?: { description?: string } };
        };
        problems.push({
          kind: "exception",
          text: exceptionDetails.exception?.description ?? exceptionDetails.text,
        });
      } else if (method === "Log.entryAdded") {
        const { entry } = params as { entry: { level: string; text: string; source: string } };
        if (entry.level === "error" || entry.level === "warning") {
          problems.push({ kind: `log:${entry.level}:${entry.source}`, text: entry.text });
        }
      }
    };
    await page("Runtime.enable");
    await page("Log.enable");
    await page("Page.enable");
    await page("Emulation.setDeviceMetricsOverride", {
      width: options.width ?? 1280,
      height: options.height ?? 1250,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const loaded = cdp.waitFor("Page.loadEventFired", sessionId);
    await page("Page.navigate", { url });
    await bounded(loaded, timeoutMs, `loading ${url}`);
    const evaluated = await page("Runtime.evaluate", {
      expression: options.evaluate,
      returnByValue: true,
      awaitPromise: true,
    }) as { result: { value?: unknown }; exceptionDetails?: { text: string } };
    if (evaluated.exceptionDetails) {
      problems.push({ kind: "evaluate", text: evaluated.exceptionDetails.text });
    }
    const shot = await page("Page.captureScreenshot", { format: "png" }) as { data: string };
    await cdp.send("Browser.close", {}).catch(() => {});
    return {
      problems,
      value: evaluated.result.value,
      screenshot: Uint8Array.from(atob(shot.data), (char) => char.charCodeAt(0)),
    };
  } finally {
    try {
      socket?.close();
    } catch {
      // Closed already.
    }
    try {
      child.kill("SIGKILL");
    } catch {
      // Gone already.
    }
    await child.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Reads Chromium's stderr until it says where DevTools listen; the rest is drained. */
async function devtoolsUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Chromium exited before listening:\n${text}`);
    text += value;
    const match = /DevTools listening on (ws:\/\/\S+)/.exec(text);
    if (match) {
      // Keep draining, so that a full pipe never blocks the browser.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* drain */ }
        } catch {
          // The browser went away.
        }
      })();
      return match[1]!;
    }
  }
}

/** A minimal DevTools protocol client: numbered commands, events by method. */
class Cdp {
  readonly opened: Promise<void>;
  onEvent: (method: string, params: unknown, sessionId: string | undefined) => void = () => {};
  readonly #socket: WebSocket;
  #next = 1;
  readonly #pending = new Map<
    number,
    { resolve(value: unknown): void; reject(error: Error): void }
  >();
  readonly #waiters: { method: string; sessionId: string | undefined; resolve(): void }[] = [];

  constructor(socket: WebSocket) {
    this.#socket = socket;
    this.opened = new Promise((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error("the DevTools WebSocket failed"));
    });
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: unknown;
        sessionId?: string;
      };
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(message.error.message));
        else pending?.resolve(message.result);
        return;
      }
      if (message.method) {
        this.onEvent(message.method, message.params, message.sessionId);
        for (let i = this.#waiters.length - 1; i >= 0; i--) {
          const waiter = this.#waiters[i]!;
          if (waiter.method === message.method && waiter.sessionId === message.sessionId) {
            this.#waiters.splice(i, 1);
            waiter.resolve();
          }
        }
      }
    };
    socket.onclose = () => {
      for (const pending of this.#pending.values()) pending.reject(new Error("DevTools closed"));
      this.#pending.clear();
    };
  }

  send(method: string, params: Record<string, unknown>, sessionId?: string): Promise<unknown> {
    const id = this.#next++;
    const reply = new Promise<unknown>((resolve, reject) =>
      this.#pending.set(id, { resolve, reject })
    );
    this.#socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return reply;
  }

  waitFor(method: string, sessionId: string | undefined): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ method, sessionId, resolve }));
  }
}

async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
