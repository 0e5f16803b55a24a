/**
 * How a usage error is said: one `linesock:` line and a pointer to `--help`; the exit status is 2.
 * No imports: main.ts prints it for an unknown subcommand without loading the parser.
 *
 * @module
 */

/**
 * Prints a usage error.
 * @param message What was wrong with the command line.
 * @returns The exit status, 2.
 */
export function usage(message: string): number {
  console.error(`linesock: ${message}\n(run with --help for usage)`);
  return 2;
}
