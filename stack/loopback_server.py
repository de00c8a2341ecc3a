"""What the stack's two servers share: loopback-only binding and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import ipaddress
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(name: str, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> int:
    """Serves until SIGTERM or SIGINT; announces `<name> listening on http://HOST:PORT` once
    ready (tests and scripts wait for that line)."""
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    bound_host, bound_port = server.server_address[:2]
    print(f"{name} listening on http://{bound_host}:{bound_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
