"""The local HTTP server that the project's web pages share (the rating study, the face editor): a
ThreadingHTTPServer that binds IPv4 or IPv6, says a bad address or a port in use in one line, shows the
URL to open, and reports a failed request through `say` instead of printing a traceback; and the request
handler base that writes their responses (no access log, no caching unless asked, no content sniffing)."""

from __future__ import annotations

import errno
import http.server
import json
import socket
import sys

from legan_tf.errors import ConfigError


class LocalServer(http.server.ThreadingHTTPServer):
    """One thread per request. Subclasses define `say(line)`."""

    daemon_threads = True

    def __init__(self, host: str, port: int, handler):
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), handler)
        except OSError as error:
            reason = error.strerror or str(error)
            hint = "; choose another --port, or --port=0 for a free one" if error.errno == errno.EADDRINUSE else ""
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}{hint}") from None
        except (OverflowError, socket.gaierror) as error:
            raise ConfigError(f"cannot listen on {host}:{port}: {error}") from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{port}/"

    def say(self, line: str) -> None:
        print(line, flush=True)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            self.say(f"error: a request from {client_address[0]} failed: {type(error).__name__}: {error}")


class LocalHandler(http.server.BaseHTTPRequestHandler):
    """Responses of the project's pages. The console is for the page's own lines: no access log."""

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def _send(self, status: int, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode("utf-8"), "application/json")
