"""A server that ends every connection with a TCP reset (SO_LINGER {1, 0}), which Deno cannot make:
it reads until the first newline, optionally replies, then resets. It prints its port on the first
line of stdout and serves until stdin closes or it is killed.

    python3 reset_server.py [REPLY]      (REPLY: a line sent before the reset, e.g. "first")
"""
import socket
import struct
import sys
import threading

reply = sys.argv[1].encode() + b"\n" if len(sys.argv) > 1 else b""
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)


def serve(conn):
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    if reply:
        conn.sendall(reply)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def accept():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
