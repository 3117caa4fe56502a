"""Port bindings: the exterior ports bound to this host's interfaces, made datapath ports (spec 1.5, 1.6).

Role: the original's `DatapathPortEntangler`. A port is bound here when its record says `host_id` = this host and
names an `interface_name`; the binding is *active* when that interface exists and is up with a link. For every
active binding the agent

1. attaches the interface to the datapath (`Datapath.add_port`) and remembers port <-> datapath port number,
2. maps the port's tunnel key (`Port.tunnel_key`, the cluster's type-0 key) to that datapath port, so that tunnel
   packets for the port are forwarded without simulation (spec 5.1),
3. writes the `Port.active` state key, `{"host_id": <this host>, "tunnel_key": <key>}` (JSON), owned by the
   agent's session: the other agents read it to tunnel to the port (and route through it, spec 1.5),
4. invalidates the flows tagged with the port (a flood that had no copy for it, a route that skipped it),
5. tells the listeners (`on_activated`: flow-state replication fetches a moved port's state from its
   `previous_host_id`, spec 4.5).

Once the Host record and every port record it names have been heard and reconciled, the bindings are *settled*:
every port that can be bound here has its `active` key. The `on_settled` listeners hear it once (the host service
then says `"bound": true` in `alive`, which tells the peers that a missing `active` key means the port is down).

Interface down or gone, unbinding, the port deleted or rebound elsewhere: the datapath port is removed, the state
key deleted, and the flows tagged with the port, its datapath port number (`("dp_port", n)`) and its tunnel key
(`("tunnel_key", k)`) invalidated. Datapath port numbers are never reused, so no stale flow outputs to a new port.

On `start` the VXLAN overlay port (`tnvxlan-overlay`, UDP 6677) is created: the one tunnel port of the host.

    PortBindings
    ├── port_ids     the host's bound ports (Host.port_ids, a store back-reference) -> one Port watch each
    ├── records      {port id: Port}
    ├── interfaces   {name: InterfaceInfo} from the host service
    └── active       {port id: Binding(port, interface, tunnel key, dp port)}, and the reverse indexes

Threads: store callbacks go through the agent's `EventGate`; `set_interfaces` is called under it.

May import: `midonet.datapath`, `midonet.store`, `midonet.topology`, `agent.events`, `agent.host`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from midonet.agent.events import EventGate
from midonet.datapath.base import Datapath, DatapathError, InterfaceInfo, PortKind
from midonet.simulation.results import FlowTag
from midonet.store.base import ObjectDeleted, ObjectEvent, Store, Subscription
from midonet.topology.devices import Port
from midonet.topology.hosts import Host

log = logging.getLogger(__name__)

ACTIVE_KEY = "active"
VXLAN_PORT_NAME = "tnvxlan-overlay"

Invalidate = Callable[[FlowTag], None]
Activated = Callable[[Port], None]


@dataclass(frozen=True, slots=True)
class Binding:
    """An active binding: virtual port `port_id` is datapath port `dp_port` (interface `interface`)."""

    port_id: str
    interface: str
    tunnel_key: int
    dp_port: int


def active_value(host_id: str, tunnel_key: int) -> str:
    """The `Port.active` state value this agent writes."""
    return json.dumps({"host_id": host_id, "tunnel_key": tunnel_key})


def dp_port_tag(number: int) -> tuple[str, int]:
    return ("dp_port", number)


def tunnel_key_tag(key: int) -> tuple[str, int]:
    return ("tunnel_key", key)


class PortBindings:
    """See the module docstring."""

    def __init__(self, host_id: str, store: Store, datapath: Datapath, gate: EventGate,
                 invalidate: Invalidate) -> None:
        self.host_id = host_id
        self._store = store
        self._dp = datapath
        self._gate = gate
        self._invalidate = invalidate
        self._host_sub: Subscription | None = None
        self._port_subs: dict[str, Subscription] = {}
        self._records: dict[str, Port] = {}
        self._interfaces: Mapping[str, InterfaceInfo] = {}
        self._active: dict[str, Binding] = {}
        self._by_dp_port: dict[int, Binding] = {}
        self._by_tunnel_key: dict[int, Binding] = {}
        self._vxlan_port: int | None = None
        self._listeners: list[Activated] = []
        self._settled_listeners: list[Callable[[], None]] = []
        self._host_heard = False          # the Host record (or its absence) delivered
        self._unheard: set[str] = set()   # ports watched whose record (or absence) is not delivered yet
        self._settled = False
        self.failures: Counter[str] = Counter()

    # ---- lifecycle ----

    def start(self) -> None:
        """Create the overlay port and start watching this host's bound ports."""
        try:
            self._vxlan_port = self._attach(VXLAN_PORT_NAME, PortKind.VXLAN)
        except DatapathError as e:
            log.error("host %s: cannot create the VXLAN overlay port: %s", self.host_id, e)
            self.failures["vxlan_port"] += 1
        self._host_sub = self._store.watch(Host, self.host_id, lambda e: self._gate.run(lambda: self._host(e)))

    def stop(self) -> None:
        """Deactivate every binding and stop watching (called under the gate)."""
        if self._host_sub is not None:
            self._host_sub.cancel()
            self._host_sub = None
        for sub in self._port_subs.values():
            sub.cancel()
        self._port_subs.clear()
        self._records.clear()
        self._unheard.clear()
        self._host_heard = self._settled = False
        for port_id in list(self._active):
            self._deactivate(port_id)
        if self._vxlan_port is not None:
            try:
                self._dp.remove_port(self._vxlan_port)
            except DatapathError:
                pass
            self._vxlan_port = None

    def on_settled(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (under the gate) once, when the bindings are first settled (module docstring)."""
        self._settled_listeners.append(listener)

    def on_activated(self, listener: Activated) -> None:
        """Call `listener(port record)` (under the gate) whenever a binding here becomes active."""
        self._listeners.append(listener)

    # ---- reading ----

    @property
    def vxlan_port(self) -> int | None:
        return self._vxlan_port

    def binding(self, port_id: str) -> Binding | None:
        return self._active.get(port_id)

    def for_dp_port(self, number: int) -> Binding | None:
        return self._by_dp_port.get(number)

    def for_tunnel_key(self, key: int) -> Binding | None:
        return self._by_tunnel_key.get(key)

    def active(self) -> dict[str, Binding]:
        return dict(self._active)

    def republish(self) -> None:
        """Write every active binding's `Port.active` again (the keys were lost with an expired store session)."""
        for binding in self._active.values():
            try:
                self._store.set_state(Port, binding.port_id, ACTIVE_KEY, active_value(self.host_id,
                                                                                     binding.tunnel_key))
            except Exception:
                log.warning("host %s: cannot mark port %s active", self.host_id, binding.port_id, exc_info=True)

    # ---- inputs (under the gate) ----

    def set_interfaces(self, interfaces: Mapping[str, InterfaceInfo]) -> None:
        """The host service scanned a new set of interfaces."""
        self._interfaces = dict(interfaces)
        self._reconcile()

    def _host(self, event: ObjectEvent) -> None:
        port_ids = event.obj.port_ids if not isinstance(event, ObjectDeleted) and isinstance(event.obj, Host) else ()
        wanted = set(port_ids)
        for port_id in [p for p in self._port_subs if p not in wanted]:
            self._port_subs.pop(port_id).cancel()
            self._records.pop(port_id, None)
            self._unheard.discard(port_id)
        for port_id in port_ids:
            if port_id not in self._port_subs:
                self._unheard.add(port_id)
                self._port_subs[port_id] = self._watch_port(port_id)
        self._host_heard = True
        self._reconcile()

    def _watch_port(self, port_id: str) -> Subscription:
        return self._store.watch(Port, port_id, lambda e: self._gate.run(lambda: self._port(port_id, e)))

    def _port(self, port_id: str, event: ObjectEvent) -> None:
        if port_id not in self._port_subs:
            return
        self._unheard.discard(port_id)
        if isinstance(event, ObjectDeleted) or not isinstance(event.obj, Port):
            self._records.pop(port_id, None)
        else:
            self._records[port_id] = event.obj
        self._reconcile()

    # ---- the binding rule ----

    def _desired(self) -> dict[str, tuple[str, int]]:
        """{port id: (interface, tunnel key)} of the bindings that should be active now."""
        out: dict[str, tuple[str, int]] = {}
        for port_id, port in self._records.items():
            name = port.interface_name
            if port.host_id != self.host_id or name is None:
                continue
            iface = self._interfaces.get(name)
            if iface is not None and iface.usable:
                out[port_id] = (name, port.tunnel_key)
        return out

    def _reconcile(self) -> None:
        desired = self._desired()
        for port_id, binding in list(self._active.items()):
            if desired.get(port_id) != (binding.interface, binding.tunnel_key):
                self._deactivate(port_id)
        for port_id, (name, key) in desired.items():
            if port_id not in self._active:
                self._activate(port_id, name, key)
        if not self._settled and self._host_heard and not self._unheard:
            self._settled = True
            for listener in self._settled_listeners:
                listener()

    def _attach(self, name: str, kind: PortKind) -> int:
        """The datapath port `name`: the one a previous agent left on a datapath it reattached to (a restarted
        `midonet agent` on the same bpffs: the kernel flows keep their port numbers), else a new one."""
        for port in self._dp.ports():
            if port.name == name and port.kind == kind:
                return port.number
        return self._dp.add_port(name, kind).number

    def _activate(self, port_id: str, interface: str, tunnel_key: int) -> None:
        try:
            number = self._attach(interface, PortKind.NETDEV)
        except DatapathError as e:
            log.warning("host %s: cannot bind port %s to %s: %s", self.host_id, port_id, interface, e)
            self.failures["add_port"] += 1
            return
        binding = Binding(port_id, interface, tunnel_key, number)
        self._active[port_id] = binding
        self._by_dp_port[number] = binding
        self._by_tunnel_key[tunnel_key] = binding
        try:
            self._store.set_state(Port, port_id, ACTIVE_KEY, active_value(self.host_id, tunnel_key))
        except Exception:   # the port was deleted meanwhile: its watch will deactivate the binding
            log.warning("host %s: cannot mark port %s active", self.host_id, port_id, exc_info=True)
            self.failures["set_active"] += 1
        if log.isEnabledFor(logging.INFO):
            log.info("host %s: port %s bound to %s (datapath port %d)", self.host_id, port_id, interface, number)
        self._invalidate(port_id)
        self._invalidate(tunnel_key_tag(tunnel_key))   # a 5 s drop flow for the key, made before we had it
        record = self._records.get(port_id)
        if record is None:
            return
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                log.exception("host %s: a listener of port %s failed", self.host_id, port_id)

    def _deactivate(self, port_id: str) -> None:
        binding = self._active.pop(port_id)
        self._by_dp_port.pop(binding.dp_port, None)
        if self._by_tunnel_key.get(binding.tunnel_key) is binding:
            del self._by_tunnel_key[binding.tunnel_key]
        try:
            self._dp.remove_port(binding.dp_port)
        except DatapathError as e:
            log.warning("host %s: removing datapath port %d: %s", self.host_id, binding.dp_port, e)
        try:
            self._store.delete_state(Port, port_id, ACTIVE_KEY)
        except Exception:   # deleted with the port, or the session is closing
            log.debug("host %s: cannot delete the active key of %s", self.host_id, port_id, exc_info=True)
        if log.isEnabledFor(logging.INFO):
            log.info("host %s: port %s unbound from %s", self.host_id, port_id, binding.interface)
        for tag in (port_id, dp_port_tag(binding.dp_port), tunnel_key_tag(binding.tunnel_key)):
            self._invalidate(tag)
