/**
 * The man page `linesock(1)`, generated from the subcommands' definitions (`deno task man` writes
 * docs/linesock.1; `man -l docs/linesock.1` reads it).
 *
 * @module
 */
import {
  type CommandSpec,
  COMMON_OPTIONS,
  defaultLabel,
  type OptionSpec,
  usageArgs,
} from "./spec.ts";

/** roff text: a backslash, a leading dot or quote, and dashes made literal. */
function roff(text: string): string {
  return text.replace(/\\/g, "\\e").replace(/-/g, "\\-").replace(/^([.'])/gm, "\\&$1");
}

function bold(text: string): string {
  return `\\fB${roff(text)}\\fR`;
}

function optionLine(option: OptionSpec): string {
  const names = [
    ...(option.short ? [`-${option.short}`] : []),
    `--${option.long}`,
    ...(option.negatable ? [`--no-${option.long}`] : []),
  ].map(bold).join(", ");
  return option.value ? `${names} \\fI${roff(option.value)}\\fR` : names;
}

/**
 * The man page.
 * @param specs Every subcommand.
 * @param version linesock's version.
 * @param exitStatuses Each documented exit status with its meaning.
 * @returns roff source for `man -l`.
 */
export function manPage(
  specs: readonly CommandSpec[],
  version: string,
  exitStatuses: readonly (readonly [number, string])[],
): string {
  const out = [
    `.TH LINESOCK 1 "" "linesock ${roff(version)}" "User Commands"`,
    ".SH NAME",
    "linesock \\- newline\\-delimited messaging over TCP, TLS and Unix sockets",
    ".SH SYNOPSIS",
    ...specs.map((spec) =>
      `.B linesock ${roff(spec.name)}\n[\\fIoptions\\fR] ${roff(usageArgs(spec))}\n.br`
    ),
    ".SH DESCRIPTION",
    "A line server with ready protocols, routes, limits, TLS and workers, and the clients that " +
    "talk to it or to any line server. Targets are written the way \\fBserve\\fR prints them: " +
    "\\fBtcp://\\fR\\fIHOST\\fR\\fB:\\fR\\fIPORT\\fR, \\fBtls://\\fR\\fIHOST\\fR\\fB:\\fR\\fIPORT\\fR " +
    "or \\fBunix:///\\fR\\fIPATH\\fR as the first argument, or \\fB\\-\\-host\\fR, " +
    "\\fB\\-p\\fR and \\fB\\-U\\fR.",
    ".SH COMMANDS",
  ];
  for (const spec of specs) {
    out.push(`.SS ${roff(spec.name)}`, roff(spec.summary));
    for (const arg of spec.args) {
      out.push(".TP", `\\fI${roff(arg.name)}\\fR${arg.variadic ? "..." : ""}`, roff(arg.help));
    }
    for (const option of spec.options.filter((option) => !option.hidden)) {
      const fallback = defaultLabel(option);
      out.push(
        ".TP",
        optionLine(option),
        roff(option.help + (fallback !== undefined ? ` (default: ${fallback})` : "")),
      );
    }
    if (spec.examples.length > 0) {
      out.push(".PP", "Examples:", ".RS", ".nf");
      for (const [command, what] of spec.examples) out.push(`${roff(command)}    # ${roff(what)}`);
      out.push(".fi", ".RE");
    }
  }
  out.push(".SH COMMON OPTIONS");
  for (const option of COMMON_OPTIONS) out.push(".TP", optionLine(option), roff(option.help));
  out.push(".SH EXIT STATUS");
  for (const [status, meaning] of exitStatuses) out.push(".TP", `\\fB${status}\\fR`, roff(meaning));
  out.push(
    ".SH ENVIRONMENT",
    ".TP",
    "\\fBNO_COLOR\\fR",
    "When set and not empty, no colour anywhere.",
    ".SH SEE ALSO",
    "\\fBnc\\fR(1), \\fBncat\\fR(1), \\fBsocat\\fR(1), \\fBredis\\-cli\\fR(1)",
  );
  return out.join("\n") + "\n";
}
