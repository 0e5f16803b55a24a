#!/usr/bin/env python3
"""Programs for `serve --exec` tests (tests/lib/protocols/exec_test.ts, tests/commands/exec_test.ts):
one script, one behaviour per mode. Output is unbuffered bytes.

  exec_program.py echo [STATUS]   "ready", then "echo: LINE" per stdin line; at the end of its input
                                  "bye after N lines", then exits with STATUS (default 0)
  exec_program.py argv ARGS...    each argument on a line, then exits
  exec_program.py env             the environment, NAME=VALUE lines, then exits
  exec_program.py hang            "pid PID", "child PID" (a background process in its group that
                                  holds its stdout), then never exits (not even at end of input)
  exec_program.py flood           "pid PID", then "1", "2", … as fast as it can, forever
  exec_program.py early STATUS    "early", "oops" on stderr, exits with STATUS without reading
  exec_program.py unterminated    "partial" without a newline, then exits
  exec_program.py long BYTES      "short", a line of BYTES "x", "after", then reads to end of input
  exec_program.py stderr N        on stderr a line with an escape sequence, then N lines "problem K";
                                  "done" on stdout, then reads to end of input
  exec_program.py bytes           bytes that are not UTF-8, with a \\r before the \\n, then exits
  exec_program.py sink            "pid PID", then never reads its stdin and never exits
"""
import os
import subprocess
import sys
import time

out = sys.stdout.buffer


def say(line):
    out.write(line.encode() + b"\n")
    out.flush()


def wait_forever():
    while True:
        time.sleep(3600)


def main():
    mode = sys.argv[1]
    if mode == "echo":
        status = int(sys.argv[2]) if len(sys.argv) > 2 else 0
        say("ready")
        count = 0
        for line in sys.stdin.buffer:
            count += 1
            out.write(b"echo: " + line)
            out.flush()
        say(f"bye after {count} lines")
        sys.exit(status)
    elif mode == "argv":
        for argument in sys.argv[2:]:
            say(argument)
    elif mode == "env":
        for name, value in sorted(os.environ.items()):
            say(f"{name}={value}")
    elif mode == "hang":
        say(f"pid {os.getpid()}")
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        say(f"child {child.pid}")
        for _ in sys.stdin.buffer:
            pass
        wait_forever()
    elif mode == "flood":
        say(f"pid {os.getpid()}")
        number = 0
        while True:
            number += 1
            out.write(b"%d\n" % number)
    elif mode == "early":
        say("early")
        sys.stderr.write("oops\n")
        sys.stderr.flush()
        sys.exit(int(sys.argv[2]))
    elif mode == "unterminated":
        out.write(b"partial")
        out.flush()
    elif mode == "long":
        say("short")
        out.write(b"x" * int(sys.argv[2]) + b"\n")
        say("after")
        for _ in sys.stdin.buffer:
            pass
    elif mode == "stderr":
        sys.stderr.write("escape \x1b[31mred\n")
        for number in range(1, int(sys.argv[2]) + 1):
            sys.stderr.write(f"problem {number}\n")
        sys.stderr.flush()
        say("done")
        for _ in sys.stdin.buffer:
            pass
    elif mode == "bytes":
        out.write(b"caf\xc3\xa9 \xff\xfe\r\n")
        out.flush()
    elif mode == "sink":
        say(f"pid {os.getpid()}")
        wait_forever()
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        # The connection went away: nothing to write to.
        os._exit(1)
