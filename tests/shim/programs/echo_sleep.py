# Blocking-socket echo (server thread + client in the main thread), a 1 MiB
# round trip with sendall/recv loops, socket timeouts, time.sleep and a
# subprocess. Prints only what must not depend on grove: no timings, only
# whether they fell within loose bounds.
import hashlib
import socket
import subprocess
import threading
import time

SIZE = 1024 * 1024


def serve(listener):
    conn, _ = listener.accept()
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    server = threading.Thread(target=serve, args=(listener,))
    server.start()

    payload = bytes((i * 7 + (i >> 10)) & 0xFF for i in range(SIZE))
    client = socket.create_connection(listener.getsockname())
    received = bytearray()

    def drain():
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    client.sendall(payload)
    client.shutdown(socket.SHUT_WR)
    reader.join()
    client.close()
    server.join()
    listener.close()
    print("echoed", len(received), "bytes, identical:", bytes(received) == payload)
    print("sha256", hashlib.sha256(received).hexdigest())

    # The same round trip with everything in the main thread, in pieces.
    a, b = socket.socketpair()
    got = bytearray()
    for i in range(64):
        piece = payload[i * 16384:(i + 1) * 16384]
        a.sendall(piece)
        while len(got) < (i + 1) * 16384:
            got.extend(b.recv(16384))
    print("socketpair pieces identical:", bytes(got) == payload[:64 * 16384])

    # A socket timeout (non-blocking socket + poll inside Python).
    b.settimeout(0.2)
    t0 = time.monotonic()
    try:
        b.recv(1)
        print("timeout: no")
    except socket.timeout:
        print("timeout: yes, after >= 0.15 s:", time.monotonic() - t0 >= 0.15)
    a.close()
    b.close()

    t0 = time.monotonic()
    time.sleep(0.2)
    elapsed = time.monotonic() - t0
    print("slept 0.2 s, within [0.2, 2):", 0.2 <= elapsed < 2)

    out = subprocess.run(["sh", "-c", "sleep 0.1; echo from child; exit 3"], capture_output=True)
    print("subprocess:", out.returncode, out.stdout)


main()
