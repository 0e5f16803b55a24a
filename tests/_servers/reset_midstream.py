"""An echo server that resets every connection (SO_LINGER {1, 0}) after echoing N lines, while the
client is still sending: the kernel then reports the reset to one of the client's calls only.
Prints its port on the first line of stdout; serves until stdin closes.

    python3 reset_midstream.py N
"""
import socket
import struct
import sys
import threading

limit = int(sys.argv[1])
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)


def serve(conn):
    seen = 0
    pending = b""
    while seen < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines[: limit - seen]:
            conn.sendall(line + b"\n")
        seen += len(lines)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def accept():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


threading.Thread(target=accept, daemon=True).start()
sys.stdin.read()
