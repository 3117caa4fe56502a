"""`midonet up` (the all-in-one for one machine) and `midonet api` (the REST API alone).

    midonet up  [--data-dir DIR] [--listen HOST:PORT] [--store memory|zookeeper://HOSTS[/ROOT]]
    midonet api [same options]

Both open the store (`memory`: embedded, persisted under DIR/store; or a ZooKeeper ensemble), build the
users (below) and serve the API with uvicorn on HOST:PORT (default 127.0.0.1:8181: loopback unless told
otherwise), then run until SIGINT or SIGTERM, stop every service in reverse order and close the store.

Users: `admin` (role admin) with the password from `MIDONET_ADMIN_PASSWORD` when set; otherwise generated
on the first start, written to DIR/admin-password (mode 600) and printed; later starts reuse that file.
More users come from DIR/users.json when present (the format of `midonet.api.auth`); its `admin`, if any,
is ignored (the admin password is the one above).

A process is a list of `Service`s started in order. `midonet api` runs the API service; `midonet up` runs
the API service plus `local_agent_services(...)`: this machine's agent (`cli.agent.LocalAgent`: host
registration, port bindings, the Linux datapath of the current network namespace) on its own session of the same
store. Its host id is kept in DATA_DIR/host-id, its bpffs in DATA_DIR/datapath, its flow state in
DATA_DIR/flowstate. Stopping `midonet up` stops the agent and removes its datapath (an all-in-one leaves nothing
behind; `midonet agent` is the one that keeps its flows forwarding across a restart). Where the Linux datapath
cannot run (not root, no BPF object: `midonet.datapath.linux.unavailable`), or with `--no-agent`, `midonet up`
serves the API and the store alone and its banner says why.

May import: `midonet.api`, `midonet.store`, `midonet.cli.output`, `midonet.cli.agent` (and uvicorn).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from midonet.cli.agent import LocalAgentError
from midonet.cli.output import fail

if TYPE_CHECKING:  # the server side (fastapi, uvicorn, store backends) is imported only when serving
    from midonet.api.auth import Authenticator, User
    from midonet.store.base import Store

DEFAULT_LISTEN = "127.0.0.1:8181"
ADMIN = "admin"
PASSWORD_FILE = "admin-password"
USERS_FILE = "users.json"


class ServeError(Exception):
    """The process cannot start (bad option, port taken, store unreachable); the message says why."""


class Service(Protocol):
    """One long-running part of a process: the API server, the local agent."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def alive(self) -> bool: ...


# --- options ------------------------------------------------------------------------------------------

def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:8181` for IPv6) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ServeError(f"--listen wants HOST:PORT (e.g. {DEFAULT_LISTEN}), got {text!r}")
    return host, int(port)


def default_data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("MIDONET_DATA_DIR") or "data")


# --- users --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AdminPassword:
    password: str
    origin: str          # "env", "generated" or "file"
    path: Path


def admin_password(data_dir: Path, env: Mapping[str, str]) -> AdminPassword:
    """The admin password: from the environment, else DIR/admin-password, else a new one written there."""
    path = data_dir / PASSWORD_FILE
    given = env.get("MIDONET_ADMIN_PASSWORD")
    if given:
        return AdminPassword(given, "env", path)
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    except OSError as e:
        raise ServeError(f"cannot read {path}: {e.strerror}") from None
    if existing:
        return AdminPassword(existing, "file", path)
    password = secrets.token_urlsafe(18)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(password + "\n")
    except OSError as e:
        raise ServeError(f"cannot write {path}: {e.strerror}") from None
    return AdminPassword(password, "generated", path)


def extra_users(path: Path) -> tuple[list[User], float]:
    """The users of DIR/users.json (none when absent) and its token lifetime; `admin` left out."""
    from midonet.api.auth import DEFAULT_TOKEN_TTL, load_users

    if not path.exists():
        return [], DEFAULT_TOKEN_TTL
    try:
        users, ttl = load_users(path)
    except ValueError as e:
        raise ServeError(str(e)) from None
    return [u for u in users if u.name != ADMIN], ttl


def authenticator(data_dir: Path, env: Mapping[str, str]) -> tuple[Authenticator, AdminPassword]:
    from midonet.api.auth import Authenticator, Role, User

    admin = admin_password(data_dir, env)
    users, ttl = extra_users(data_dir / USERS_FILE)
    return Authenticator([User(ADMIN, admin.password, Role.ADMIN), *users], ttl), admin


# --- services -----------------------------------------------------------------------------------------

class ApiService:
    """The REST API: uvicorn in a thread, on a socket bound here (so a taken port is a clear error)."""

    name = "api"

    def __init__(self, store: Store, auth: Authenticator, host: str, port: int) -> None:
        import uvicorn

        from midonet.api.app import PREFIX, create_app

        self.prefix = PREFIX
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
        except OSError as e:
            self._socket.close()
            raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        self.host, self.port = host, self._socket.getsockname()[1]
        config = uvicorn.Config(create_app(store, auth), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServeError(f"the API server on {self.host}:{self.port} did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._socket.close()

    def alive(self) -> bool:
        return self._thread.is_alive()


def local_agent_services(store: Store, data_dir: Path) -> tuple[list[Service], str]:
    """The local agent's services for `midonet up`, and the banner's line about it."""
    import uuid

    from midonet.cli.agent import LocalAgent
    from midonet.datapath.linux import unavailable

    reason = unavailable()
    if reason is not None:
        return [], f"(no local agent: the Linux datapath cannot run here: {reason})"
    id_file = data_dir / "host-id"
    try:
        host_id = str(uuid.UUID(id_file.read_text().strip()))
    except FileNotFoundError:
        host_id = str(uuid.uuid4())
        id_file.write_text(host_id + "\n")
    except ValueError:
        raise ServeError(f"{id_file} does not hold a host UUID; remove it for a new one") from None
    name = socket.gethostname()
    agent = LocalAgent(store.connect(f"agent-{host_id}"), host_id, name, bpffs=(data_dir / "datapath").resolve(),
                       data_dir=data_dir / "flowstate", keep_datapath=False)
    return [agent], f"Local agent: host {host_id} ({name}); bind ports to this namespace's interfaces"


# --- running ------------------------------------------------------------------------------------------

def open_backing_store(url: str, data_dir: Path) -> Store:
    from midonet.store.factory import open_store

    try:
        return open_store(url, owner="api", data_dir=data_dir / "store")
    except Exception as e:  # any backend failure is a start-up error the user must see in one line
        raise ServeError(f"cannot open the store {url!r}: {e}") from None


def banner(api: ApiService, admin: AdminPassword, store_url: str, data_dir: Path, agent: str | None) -> str:
    where = f"memory, in {data_dir / 'store'}" if store_url == "memory" else store_url
    login_host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(api.host)
    url = api.url if login_host is None else f"http://{login_host}:{api.port}{api.prefix}"
    if admin.origin == "env":
        secret, password_line = "$MIDONET_ADMIN_PASSWORD", "admin password: from MIDONET_ADMIN_PASSWORD"
    else:
        secret = f'"$(cat {admin.path})"'
        password_line = (f"admin password: {admin.password}  (new; saved in {admin.path})"
                         if admin.origin == "generated" else f"admin password: in {admin.path}")
    lines = [f"MidoNet API on {api.url}  (store: {where})", password_line,
             "Use it:", f"  export MIDONET_API_URL={url} MIDONET_USERNAME=admin MIDONET_PASSWORD={secret}",
             "  midonet list bridges"]
    if agent is not None:
        lines.append(agent)
    lines.append("Stop with Ctrl-C (or SIGTERM).")
    return "\n".join(lines)


def serve(data_dir: Path, listen: str, store_url: str, env: Mapping[str, str], with_agent: bool) -> int:
    """Run the services until SIGINT/SIGTERM; 0 on a clean stop, 1 if a service died."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    started: list[Service] = []
    store: Store | None = None
    try:
        host, port = parse_listen(listen)
        fresh = not data_dir.exists()
        data_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            data_dir.chmod(0o700)
        auth, admin = authenticator(data_dir, env)
        store = open_backing_store(store_url, data_dir)
        api = ApiService(store, auth, host, port)
        services: list[Service] = [api]
        agent_line = None
        if with_agent:
            agents, agent_line = local_agent_services(store, data_dir)
            services += agents
        for service in services:
            if stop.is_set():
                break
            try:
                service.start()
            except LocalAgentError as e:
                raise ServeError(str(e)) from None
            started.append(service)
        typer.echo(banner(api, admin, store_url, data_dir.resolve(), agent_line))
        while not stop.wait(0.5):
            dead = [s.name for s in started if not s.alive()]
            if dead:
                typer.echo(f"error: {', '.join(dead)} stopped unexpectedly", err=True)
                return 1
        typer.echo("stopping")
        return 0
    except ServeError as e:
        fail(str(e))
    finally:
        for service in reversed(started):
            service.stop()
        if store is not None:
            store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- the commands -------------------------------------------------------------------------------------

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="where state is kept "
                                                 "[env MIDONET_DATA_DIR; default ./data]", show_default=False)]
ListenOpt = Annotated[str, typer.Option("--listen", help="HOST:PORT the API listens on")]
StoreOpt = Annotated[str, typer.Option("--store", help="memory, or zookeeper://HOST:PORT[,...][/ROOT]")]
AgentOpt = Annotated[bool, typer.Option("--agent/--no-agent", help="run this machine's agent (root, tc-BPF)")]


def up(data_dir: DataDirOpt = None, listen: ListenOpt = DEFAULT_LISTEN, store: StoreOpt = "memory",
       agent: AgentOpt = True) -> None:
    """All-in-one for one machine: store, API and this machine's agent."""
    code = serve(data_dir or default_data_dir(os.environ), listen, store, os.environ, with_agent=agent)
    raise typer.Exit(code)


def api(data_dir: DataDirOpt = None, listen: ListenOpt = DEFAULT_LISTEN, store: StoreOpt = "memory") -> None:
    """The REST API alone."""
    code = serve(data_dir or default_data_dir(os.environ), listen, store, os.environ, with_agent=False)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("up", rich_help_panel="Run")(up)
    app.command("api", rich_help_panel="Run")(api)
