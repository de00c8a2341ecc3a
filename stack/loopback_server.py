"""What the stack's two servers share: loopback-only binding, optional TLS and a clean stop on
SIGTERM/SIGINT."""

from __future__ import annotations

import ipaddress
import signal
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


# A client that connects and never completes the TLS handshake must not hold a thread forever.
HANDSHAKE_TIMEOUT = 10.0


class TlsThreadingHTTPServer(ThreadingHTTPServer):
    """Accepts plain TCP and does the TLS handshake in the request's own thread, so one slow or
    broken client cannot stall the accept loop."""

    def __init__(self, address, handler, context: ssl.SSLContext) -> None:
        self.tls_context = context
        super().__init__(address, handler)

    def process_request_thread(self, request, client_address):
        try:
            request.settimeout(HANDSHAKE_TIMEOUT)
            tls = self.tls_context.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (OSError, ssl.SSLError) as exc:
            # The one trace of a client that does not trust the CA or asked for another name.
            sys.stderr.write(f"TLS handshake with {client_address[0]} failed: {exc}\n")
            sys.stderr.flush()
            self.shutdown_request(request)
            return
        super().process_request_thread(tls, client_address)

    def shutdown_request(self, request):
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.close_request(request)


def serve(name: str, host: str, port: int, handler: type[BaseHTTPRequestHandler],
          tls: ssl.SSLContext | None = None) -> int:
    """Serves (HTTPS when `tls` is given) until SIGTERM or SIGINT; announces
    `<name> listening on http(s)://HOST:PORT` once ready (tests and scripts wait for that line)."""
    server = TlsThreadingHTTPServer((host, port), handler, tls) if tls else ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    bound_host, bound_port = server.server_address[:2]
    scheme = "https" if tls else "http"
    print(f"{name} listening on {scheme}://{bound_host}:{bound_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
