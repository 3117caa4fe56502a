"""A throwaway ZooKeeper server for tests and demos: one standalone server on a free loopback port.

    with ZooKeeperServer() as zk:
        store = open_store(f"zookeeper://{zk.hosts}/test")

`start()` writes a `zoo.cfg` in a fresh temporary directory, runs Debian's ZooKeeper (`java ...
QuorumPeerMain zoo.cfg`, the command line of notes/zookeeper.md) in its own process group, and returns once a
kazoo client connects (there is no `nc` on our images). `stop()` ends that process by its PID (SIGTERM, then
SIGKILL), never by name, and removes the directory. An `atexit` hook stops a server the caller forgot.

`unavailable_reason()` says why a server cannot be started here (no Java, no jar), for tests to skip.

May import: nothing of ours (kazoo).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from kazoo.client import KazooClient

JAVA_DIR = Path("/usr/share/java")
ZOOKEEPER_JAR = JAVA_DIR / "zookeeper.jar"


def unavailable_reason(java_dir: Path = JAVA_DIR) -> str | None:
    """None if a server can be started; else what is missing."""
    if shutil.which("java") is None:
        return "java is not installed"
    if not (java_dir / "zookeeper.jar").is_file():
        return f"{java_dir / 'zookeeper.jar'} is missing (apt-get install zookeeper)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# The readiness probe's kazoo client: its "connection refused" while the server starts is expected.
_quiet = logging.getLogger(__name__ + ".probe")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class ZooKeeperError(RuntimeError):
    """The server did not start (the message ends with the tail of its log)."""


class ZooKeeperServer:
    """One standalone ZooKeeper server; a context manager (start on enter, stop on exit)."""

    def __init__(self, *, java_dir: Path = JAVA_DIR, startup_timeout: float = 30.0,
                 tick_ms: int = 500, heap_mb: int = 256, address: str = "127.0.0.1") -> None:
        self.address = address      # where it listens (the testbed uses an address of its underlay)
        self.java_dir = java_dir
        self.startup_timeout = startup_timeout
        self.tick_ms = tick_ms
        self.heap_mb = heap_mb
        self.port = 0
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        """The connection string, `ADDRESS:PORT` (`127.0.0.1:PORT` by default)."""
        if self._process is None:
            raise ZooKeeperError("the server is not running")
        return f"{self.address}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _classpath(self) -> str:
        jars = [str(self.java_dir / "zookeeper.jar")]
        jars += sorted(str(p) for p in self.java_dir.glob("*.jar") if p.name != "zookeeper.jar")
        return ":".join(jars)

    def start(self, attempts: int = 3) -> str:
        """Start the server and wait until a client connects; returns `hosts`. Retries on a port clash."""
        reason = unavailable_reason(self.java_dir)
        if reason is not None:
            raise ZooKeeperError(reason)
        if self._process is not None:
            return self.hosts
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                return self.hosts
            except ZooKeeperError:
                self.stop()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self) -> None:
        directory = Path(tempfile.mkdtemp(prefix="midonet-zk-"))
        self.directory = directory
        self.port = free_port()
        (directory / "data").mkdir()
        (directory / "zoo.cfg").write_text(
            f"tickTime={self.tick_ms}\n"
            f"dataDir={directory / 'data'}\n"
            f"clientPort={self.port}\n"
            f"clientPortAddress={self.address}\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=*\n"
            "maxClientCnxns=0\n"
            "forceSync=no\n"
        )
        log_file = open(directory / "zookeeper.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            self._process = subprocess.Popen(
                ["java", f"-Xmx{self.heap_mb}m", "-Dzookeeper.admin.enableServer=false",
                 "-cp", self._classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                 str(directory / "zoo.cfg")],
                cwd=directory, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()
        _running.add(self)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ZooKeeperError(f"ZooKeeper exited with {self._process.returncode}: {self._log_tail()}")
            client = KazooClient(hosts=f"{self.address}:{self.port}", timeout=2.0, logger=_quiet)
            try:
                client.start(timeout=1.0)
                client.get_children("/")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise ZooKeeperError(
                        f"ZooKeeper did not answer on port {self.port} within {self.startup_timeout} s: "
                        f"{self._log_tail()}") from None
            finally:
                with contextlib.suppress(Exception):
                    client.stop()
                    client.close()

    def _log_tail(self, size: int = 2000) -> str:
        if self.directory is None:
            return ""
        try:
            return (self.directory / "zookeeper.log").read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (by its PID) and remove its directory. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        _running.discard(self)
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> ZooKeeperServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_running: set[ZooKeeperServer] = set()


@atexit.register
def _stop_forgotten_servers() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()

