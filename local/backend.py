"""The embedded moto server of the local default, the tests and the benchmarks.

DynamoDB applies each request atomically: a conditional write's condition and its update are
one step, and two ``list_append`` updates of one item both land. moto server answers requests
on threads and does not lock its backend, so under concurrent clients two conditional writes
of one item could both pass (a burst of feedback queueing two retrains) or one append could be
lost. ``MotoServer`` serves DynamoDB requests one at a time, which gives the embedded default
DynamoDB's guarantee; other services stay concurrent (an SQS long poll must not hold up the
rest).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

__all__ = ["MotoServer", "start_moto"]


class _OneDynamoDbRequestAtATime:
    """WSGI middleware: DynamoDB requests (``X-Amz-Target: DynamoDB_...``) under one lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


class MotoServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer, its DynamoDB requests serialised (see the module docstring)."""

    def _server_entry(self) -> None:
        app = _OneDynamoDbRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def start_moto() -> tuple[MotoServer, str]:
    """A started :class:`MotoServer` on a free loopback port, and its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call
    server = MotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"
