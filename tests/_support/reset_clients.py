#!/usr/bin/env python3
"""Clients that end with a TCP reset (SO_LINGER {1, 0}), which Deno cannot make: the attacker side
of tests/reliability/attacks_test.ts.

  reset_clients.py burst PORT N        N connections, each reset at once (before the server accepts)
  reset_clients.py line PORT N LINE    N connections each send LINE; prints "sent"; on a line on
                                       stdin, resets them all and prints "reset"
"""
import socket
import struct
import sys

LINGER_RESET = struct.pack("ii", 1, 0)


def client(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.connect(("127.0.0.1", port))
    return sock


def main():
    mode, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if mode == "burst":
        for _ in range(count):
            client(port).close()
        print("reset", flush=True)
    elif mode == "line":
        line = (sys.argv[4] + "\n").encode()
        socks = []
        for _ in range(count):
            sock = client(port)
            sock.sendall(line)
            socks.append(sock)
        print("sent", flush=True)
        sys.stdin.readline()
        for sock in socks:
            sock.close()
        print("reset", flush=True)
    else:
        sys.exit("unknown mode " + mode)


main()
