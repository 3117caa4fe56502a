"""`midonet agent`: one host's agent on the Linux datapath of the current network namespace.

    midonet agent --store zookeeper://HOSTS[/ROOT] --host-id UUID [--host-name NAME] [--data-dir DIR]
                  [--bpffs DIR] [--tunnel-ip IP]

Opens a session on the store (a ZooKeeper ensemble: the agents of several hosts share it), creates the
`LinuxDatapath` of this namespace (its bpffs on DIR, default /run/midonet/datapath/midonet), registers the host
(`--host-name`, default the host id), discovers the interfaces with the Linux backend's interface source (rescanned
on every netlink link or address event and on every tick), and runs until SIGINT or SIGTERM.

Stopping keeps the kernel side: the agent detaches (it deletes this host's `alive` key first, so its peers keep
sending to its ports), the datapath is released, not closed (its pinned maps, programs and flows keep forwarding;
an agent started again on the same `--bpffs` reattaches and inherits them), and the store session is closed, which
drops the ports' `active` state keys. Traffic through installed flows goes on throughout a restart.

`--tunnel-ip`, when given, must be an address of an interface of this namespace: the address the tunnel zone
names this host by (the agent reads it from the tunnel zone; the option only checks it is really here).
`--data-dir` keeps the flow state on disk (default: in memory only).

Bad options end with one `error: ...` line and status 1 (`AgentOptions.parse` checks them before anything runs).

The pieces: `LocalAgent` (the agent, its datapath, interface source and session, started and stopped together;
`midonet up` runs one too, closing its datapath on stop), `Collector` (the process's garbage-collector policy,
started once the agent is up), `WallClock` (the agent's clock).

May import: `midonet.agent`, `midonet.datapath`, `midonet.store`, `midonet.cli.output`.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from midonet.cli.output import fail

if TYPE_CHECKING:
    from midonet.agent import Agent
    from midonet.datapath.linux import LinuxDatapath, LinuxInterfaceSource
    from midonet.store.base import Store

TICK_INTERVAL = 1.0


class AgentOptionError(ValueError):
    """An option is wrong; the message says which and why."""


@dataclass(frozen=True, slots=True)
class AgentOptions:
    store: str
    host_id: str
    host_name: str
    data_dir: Path | None
    bpffs: Path | None
    tunnel_ip: str | None

    @classmethod
    def parse(cls, store: str, host_id: str, host_name: str | None = None, data_dir: Path | None = None,
              bpffs: Path | None = None, tunnel_ip: str | None = None) -> AgentOptions:
        if not store.startswith("zookeeper://") or not store.removeprefix("zookeeper://").split("/")[0]:
            raise AgentOptionError(f"--store wants zookeeper://HOST:PORT[,...][/ROOT], got {store!r}")
        try:
            ident = str(uuid.UUID(host_id))
        except ValueError:
            raise AgentOptionError(f"--host-id wants a UUID, got {host_id!r}") from None
        if tunnel_ip is not None:
            try:
                tunnel_ip = str(ipaddress.IPv4Address(tunnel_ip))
            except ValueError:
                raise AgentOptionError(f"--tunnel-ip wants an IPv4 address, got {tunnel_ip!r}") from None
        if host_name is not None and not host_name.strip():
            raise AgentOptionError("--host-name must not be empty")
        return cls(store, ident, host_name or ident, data_dir, bpffs, tunnel_ip)


class WallClock:
    """The agent's clock: seconds since the epoch (flow state on disk and from peers carries such times)."""

    def now(self) -> float:
        return time.time()


GC_THRESHOLDS = (2_000, 1_000, 1_000)
COLLECT_EVERY = 30.0


class Collector:
    """The agent process's garbage-collector policy: once the agent is up, everything made so far (the topology,
    the tables, the code) is frozen out of collections, young collections run about 3 times rarer than the
    interpreter's default, the middle generation is left to the full collections, and those run only every
    `COLLECT_EVERY` seconds, from a thread of their own. A new flow allocates a few dozen objects and keeps about
    ten (its entry, key, actions): with the defaults the collector ran every few flows and scanned what the
    installed flows keep; with middle collections every 10 young ones (the default), each scanned again every flow
    of the last few seconds, 3 times a burst of 5,000 new flows, 20-40 ms each (docs/benchmarks.md, the agent's
    new flows/s)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thresholds = gc.get_threshold()

    def start(self) -> None:
        gc.collect()
        gc.freeze()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        gc.set_threshold(*self._thresholds)
        gc.unfreeze()

    def _run(self) -> None:
        while not self._stop.wait(COLLECT_EVERY):
            gc.collect()


class LocalAgent:
    """One host's agent on the Linux datapath of the current network namespace, on a store session it is given
    and closes on `stop`: what `midonet agent` runs, and the agent service of `midonet up`.

    `keep_datapath`: stopping detaches the agent and releases the datapath, whose flows keep forwarding for the
    next agent on the same bpffs (`midonet agent`); without it, stopping removes the agent's ports, flows and
    datapath (`midonet up`: an all-in-one that leaves nothing behind)."""

    name = "agent"

    def __init__(self, session: Store, host_id: str, host_name: str, *, bpffs: Path | None, data_dir: Path | None,
                 keep_datapath: bool) -> None:
        self.host_id, self.host_name = host_id, host_name
        self._bpffs, self._data_dir, self._keep = bpffs, data_dir, keep_datapath
        self._session: Store | None = session
        self._source: LinuxInterfaceSource | None = None
        self._datapath: LinuxDatapath | None = None
        self._agent: Agent | None = None
        self._collector: Collector | None = None

    def start(self) -> None:
        """Create the datapath, start the agent; `LocalAgentError` saying what failed."""
        from midonet.agent import Agent, AgentConfig
        from midonet.datapath.linux import LinuxDatapath, LinuxInterfaceSource

        if self._session is None:
            raise LocalAgentError("the agent was stopped; make a new one")
        self._source = LinuxInterfaceSource()
        try:
            self._datapath = LinuxDatapath("midonet", state_dir=self._bpffs, writer_process=True)
        except Exception as e:
            self.stop()
            raise LocalAgentError(f"cannot create the Linux datapath: {e}") from None
        config = AgentConfig(name=self.host_name, tick_interval=TICK_INTERVAL, data_dir=self._data_dir)
        self._agent = Agent(self.host_id, self._session, self._datapath, WallClock(),
                            interfaces=self._source, config=config).start()
        self._source.watch(self._agent.interfaces_changed)
        self._collector = Collector()
        self._collector.start()

    def stop(self) -> None:
        if self._collector is not None:
            self._collector.stop()
            self._collector = None
        if self._agent is not None:
            if self._keep:
                self._agent.detach()
            else:
                self._agent.stop()
        if self._source is not None:
            self._source.close()
        if self._datapath is not None:
            if self._keep:
                self._datapath.release()
            else:
                self._datapath.close()
        if self._session is not None:
            self._session.close()
        self._agent = self._source = self._datapath = self._session = None

    def alive(self) -> bool:
        return self._agent is not None and self._agent.running


class LocalAgentError(RuntimeError):
    """The local agent could not start; the message says why, in one line."""


def run(options: AgentOptions) -> int:
    """Run the agent until SIGINT/SIGTERM; 0 on a clean stop."""
    from midonet.datapath.linux import LinuxInterfaceSource, unavailable
    from midonet.store.factory import open_store

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    reason = unavailable()
    if reason is not None:
        fail(f"the Linux datapath cannot run here: {reason}")
    if options.tunnel_ip is not None:
        scan = LinuxInterfaceSource()
        try:
            local = {a.split("/")[0] for link in scan.scan() for a in link.addresses}
        finally:
            scan.close()
        if options.tunnel_ip not in local:
            fail(f"--tunnel-ip {options.tunnel_ip} is not an address of this namespace's interfaces")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    agent = None
    try:
        try:
            store = open_store(options.store, owner=f"agent-{options.host_id}")
        except Exception as e:  # any backend failure is a start-up error the user must see in one line
            fail(f"cannot open the store {options.store!r}: {e}")
        agent = LocalAgent(store, options.host_id, options.host_name, bpffs=options.bpffs,
                           data_dir=options.data_dir, keep_datapath=True)
        try:
            agent.start()
        except LocalAgentError as e:
            fail(str(e))
        typer.echo(f"agent {options.host_id} ({options.host_name}) running; stop with SIGTERM", err=True)
        stop.wait()
        typer.echo("stopping", err=True)
        return 0
    finally:
        if agent is not None:
            agent.stop()           # closes the store session too
        for sig, handler in previous.items():
            signal.signal(sig, handler)


StoreOpt = Annotated[str, typer.Option("--store", help="zookeeper://HOST:PORT[,...][/ROOT]", show_default=False)]
HostIdOpt = Annotated[str, typer.Option("--host-id", help="this host's UUID", show_default=False)]
HostNameOpt = Annotated[str | None, typer.Option("--host-name", help="the Host record's name [the host id]",
                                                 show_default=False)]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="where flow state is kept [memory only]",
                                                 show_default=False)]
BpffsOpt = Annotated[Path | None, typer.Option("--bpffs", help="the datapath's bpffs "
                                               "[/run/midonet/datapath/midonet]", show_default=False)]
TunnelIpOpt = Annotated[str | None, typer.Option("--tunnel-ip", help="this host's underlay address (checked)",
                                                 show_default=False)]


def agent(store: StoreOpt = "", host_id: HostIdOpt = "", host_name: HostNameOpt = None,
          data_dir: DataDirOpt = None, bpffs: BpffsOpt = None, tunnel_ip: TunnelIpOpt = None) -> None:
    """One host's agent on the Linux datapath of this network namespace."""
    try:
        options = AgentOptions.parse(store, host_id, host_name, data_dir, bpffs, tunnel_ip)
    except AgentOptionError as e:
        fail(str(e))
    raise typer.Exit(run(options))


def register(app: typer.Typer) -> None:
    app.command("agent", rich_help_panel="Run")(agent)
