"""Serve the REST API from a background thread on a free loopback port (tests, benchmarks, sandbox).

    with ApiServer(store, auth) as server:
        httpx.get(server.url + "/", headers=...)

The server is a real uvicorn HTTP server: clients talk to it over TCP exactly as to `midonet api`.
Stopping it joins the thread; nothing is left behind.

May import: `midonet.api`, `midonet.store`.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from midonet.api.app import PREFIX, create_app
from midonet.api.auth import Authenticator
from midonet.store.base import Store


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ApiServer:
    """A uvicorn server for `create_app(store, auth)` on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, store: Store, auth: Authenticator, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(create_app(store, auth), host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"api-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        """The API's base URI (ends in /midonet-api)."""
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def start(self, timeout: float = 10.0) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
