/**
 * Internal: the life of a connection's session as one {@linkcode Phase}, the transitions allowed
 * between phases ({@linkcode TRANSITIONS}), and {@linkcode transition}, which checks one.
 *
 * ```text
 * Queued ──► Reading ◄──► Working ──► Closing ──► Lingering ──► Closed
 * Queued ──► Working                    (no PROXY header to read first)
 * Reading ──► Lingering                 (shutdown: our FIN while the loop waits for input)
 * Queued, Reading, Working, Closing ──► Refusing ──► Closed
 * any phase but Closed ──► Closed       (destroyed: aborted, reset, write timeout)
 * ```
 *
 * It replaces a state (`waiting | reading | working | closing | closed`, `closing` unused) and the
 * flags that were phases in disguise: "refusing" is {@linkcode Phase.Refusing}, "lingering" and
 * "FIN sent by the shutdown" are {@linkcode Phase.Lingering}. The sweeper's timeouts follow the
 * phase: the idle timeout counts while Reading, and while Working or Closing with a write stuck; the
 * line timeout while Reading; Refusing and Lingering have their own bounds (1 s, 2 s).
 *
 * Three facts about a session are kept beside its phase because they are not phases:
 * - the close reason: a *request* ("close once the replies are out", from a handler, a timer, the
 *   line budget) that may arrive in any phase and is carried out by the read loop at its next step
 *   (while the loop waits for input: at once, replies, FIN and linger, as at shutdown), and the
 *   words the closing log line gives;
 * - draining: the server's shutdown asked this session to finish what it received, a request too,
 *   that applies in whatever phase it finds the session;
 * - the input's end: the peer half-closed; that is its direction, not ours (we still answer, and
 *   may still be refused or time out).
 *
 * @module
 */

/** Where a session is in its life. */
export const Phase = {
  /** Accepted and not started: waiting for a client slot, or about to be refused. */
  Queued: 0,
  /** Waiting for input (or for the PROXY header); everything received so far is answered. */
  Reading: 1,
  /** Handling input: framing lines, running handlers, waiting for replies or for the socket. */
  Working: 2,
  /** No more input is handled: the last replies are flushed, then the FIN. */
  Closing: 3,
  /** One error line (a refusal or a timeout's farewell), a bounded wait for it, then the close. */
  Refusing: 4,
  /** Our FIN is sent: the peer's input is read and discarded until it closes (bounded). */
  Lingering: 5,
  /** The socket is closed. */
  Closed: 6,
} as const;

/** Where a session is in its life (see {@linkcode Phase}). */
export type Phase = typeof Phase[keyof typeof Phase];

/** The phases' names, for messages: `PHASE_NAMES[phase]`. */
export const PHASE_NAMES: readonly string[] = [
  "Queued",
  "Reading",
  "Working",
  "Closing",
  "Refusing",
  "Lingering",
  "Closed",
];

/** Every allowed transition: the phases each phase may go to. */
export const TRANSITIONS: Readonly<Record<Phase, readonly Phase[]>> = {
  // Served (straight to work, or first the PROXY header), refused at admission, or destroyed.
  [Phase.Queued]: [Phase.Reading, Phase.Working, Phase.Refusing, Phase.Closed],
  // Input arrived (or its end); a timeout's farewell or a bad PROXY header; shutdown's FIN.
  [Phase.Reading]: [Phase.Working, Phase.Refusing, Phase.Lingering, Phase.Closed],
  // Everything received is answered: read again; or the loop is over; or a client that does not
  // read is idle too long.
  [Phase.Working]: [Phase.Reading, Phase.Closing, Phase.Refusing, Phase.Closed],
  // The last replies are out: FIN; or a client that does not read them is idle too long.
  [Phase.Closing]: [Phase.Lingering, Phase.Refusing, Phase.Closed],
  [Phase.Refusing]: [Phase.Closed],
  [Phase.Lingering]: [Phase.Closed],
  [Phase.Closed]: [],
};

/** The table as one bit mask per phase, for the checks made on every read. */
const ALLOWED: readonly number[] = Object.values(Phase).map((from) =>
  TRANSITIONS[from].reduce<number>((mask, to) => mask | (1 << to), 0)
);

/**
 * Whether a session may go from `from` to `to`.
 * @returns `true` when the table allows it.
 */
export function canTransition(from: Phase, to: Phase): boolean {
  return (ALLOWED[from]! & (1 << to)) !== 0;
}

/**
 * Checks a transition.
 * @param from The session's phase.
 * @param to The phase it goes to.
 * @returns `to`, to assign.
 * @throws {Error} When the table does not allow it (a bug in the engine, never the peer's doing).
 */
export function transition(from: Phase, to: Phase): Phase {
  if ((ALLOWED[from]! & (1 << to)) === 0) {
    throw new Error(`session phase: no transition from ${PHASE_NAMES[from]} to ${PHASE_NAMES[to]}`);
  }
  return to;
}
