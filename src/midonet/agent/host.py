"""The host service: registers this host, keeps it alive, publishes its interfaces (spec 1.4).

Role: the original's `HostService`. On `start` it makes sure the `Host` record exists (created with this host's
name when absent; an existing record keeps its name and everything else: operators may have named it), writes the
`alive` state key, and publishes the host's interfaces in the `interfaces` state key, in the format
`midonet.api.hosts` documents (and reads back for `/hosts/{id}/interfaces`):

    [{"name", "mac", "mtu", "status" (bit 0 up, bit 1 has link), "type", "addresses", "endpoint", "portType"}]

Both keys are owned by the agent's store session, so they vanish when the agent dies (REST `alive` turns false).
`alive` says `{"alive": true, "bound": false}` from the start, and `"bound": true` once the agent has published
the `Port.active` key of every port it can bind (`mark_bound`): from then on a bound port with no `active` key is
really down, before it the agent may just not have got to it (`TopologyCache` port locations). A stopping agent
that will be started again (`withdraw`) deletes `alive` before its session ends and its ports' `active` keys go
with it, so its peers never see the ports down.

Interfaces come from an injected `InterfaceSource`: the memory datapath's fake host interfaces in tests and the
sandbox (`midonet.testing.fakehosts.FakeInterfaceSource`), netlink later (the original's `DefaultInterfaceScanner`).
A source is *scanned*: `rescan()` reads it, republishes the state key when anything changed, and tells the
listeners (the port bindings) the new set. The agent rescans on every `tick` and whenever told
(`Agent.interfaces_changed`, what a netlink listener will call).

    HostService
    ├── source      InterfaceSource.scan() -> [InterfaceInfo]
    ├── published   {name: InterfaceInfo}, as last written to the store
    └── listeners   called with the new {name: InterfaceInfo} after every change

May import: `midonet.store`, `midonet.topology`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Protocol

from midonet.datapath.base import InterfaceInfo
from midonet.store.base import Store
from midonet.topology.errors import ConflictError
from midonet.topology.hosts import Host

log = logging.getLogger(__name__)

ALIVE_KEY = "alive"
INTERFACES_KEY = "interfaces"
STATUS_UP = 1
STATUS_HAS_LINK = 2


def interface_json(i: InterfaceInfo) -> dict[str, object]:
    """An interface as the `interfaces` state key holds it (the format above)."""
    status = (STATUS_UP if i.up else 0) | (STATUS_HAS_LINK if i.has_link else 0)
    return {"name": i.name, "mac": i.mac, "mtu": i.mtu, "status": status, "type": i.type,
            "addresses": list(i.addresses), "endpoint": i.endpoint, "portType": i.port_type}


class InterfaceSource(Protocol):
    """Where the host service learns the host's interfaces."""

    def scan(self) -> list[InterfaceInfo]:
        """Every interface of the host now."""
        ...


InterfacesListener = Callable[[Mapping[str, InterfaceInfo]], None]


def alive_value(*, bound: bool) -> str:
    """The `alive` state value (see the module docstring)."""
    return json.dumps({"alive": True, "bound": bound})


def is_bound(value: str) -> bool:
    """Whether an `alive` value says its agent has published every `active` key it can (malformed: no)."""
    try:
        return json.loads(value).get("bound") is True
    except (ValueError, AttributeError):
        return False


class HostService:
    """See the module docstring. Not thread-safe: the agent calls it under its lock."""

    def __init__(self, host_id: str, store: Store, source: InterfaceSource, *, name: str | None = None) -> None:
        self.host_id = host_id
        self._store = store
        self._source = source
        self._name = name
        self._published: dict[str, InterfaceInfo] | None = None
        self._listeners: list[InterfacesListener] = []
        self._started = False
        self._bound = False

    def on_interfaces(self, listener: InterfacesListener) -> None:
        self._listeners.append(listener)

    @property
    def interfaces(self) -> Mapping[str, InterfaceInfo]:
        """The interfaces as last scanned."""
        return self._published or {}

    def start(self) -> None:
        """Register the host, write `alive`, publish the interfaces."""
        self.register()
        self._write_alive()
        self._started = True
        self.rescan(force=True)

    def mark_bound(self) -> None:
        """Every port this agent can bind has its `active` key: say so in `alive`."""
        if self._started and not self._bound:
            self._bound = True
            self._write_alive()

    def _write_alive(self) -> None:
        self._store.set_state(Host, self.host_id, ALIVE_KEY, alive_value(bound=self._bound))

    def register(self) -> None:
        """Create the Host record if absent; an existing record is left as it is (its name kept)."""
        if self._store.find(Host, self.host_id) is not None:
            return
        try:
            self._store.create(Host(id=self.host_id, name=self._name))
        except ConflictError:   # created meanwhile (an operator pre-registering the host): keep theirs
            pass

    def rescan(self, *, force: bool = False) -> bool:
        """Read the source; publish and notify if anything changed (or `force`). Whether it changed."""
        if not self._started:
            return False
        try:
            found = {i.name: i for i in self._source.scan()}
        except Exception:
            log.exception("host %s: interface scan failed", self.host_id)
            return False
        if found == self._published and not force:
            return False
        self._published = found
        value = json.dumps([interface_json(i) for i in found.values()])
        self._store.set_state(Host, self.host_id, INTERFACES_KEY, value)
        for listener in self._listeners:
            listener(found)
        return True

    def alive_lost(self) -> bool:
        """Whether `alive` is gone or another session holds it (a ZooKeeper session that expired took every key of
        ours with it). The agent's tick asks, writes its ports' `active` keys again, then calls `keep_alive`."""
        if not self._started:
            return False
        state = self._store.get_state(Host, self.host_id, ALIVE_KEY)
        return state is None or state.owner != self._store.owner

    def keep_alive(self) -> None:
        """Write `alive` and `interfaces` again."""
        if not self._started:
            return
        log.warning("host %s: the alive key was lost; writing it again", self.host_id)
        self._write_alive()
        self.rescan(force=True)

    def withdraw(self) -> None:
        """Delete `alive` only (the agent is stopping and will be back; the session's end removes the rest)."""
        if not self._started:
            return
        self._started = False
        try:
            self._store.delete_state(Host, self.host_id, ALIVE_KEY)
        except Exception:
            log.debug("host %s: could not delete %s", self.host_id, ALIVE_KEY, exc_info=True)

    def stop(self) -> None:
        """Withdraw `alive` and `interfaces` (closing the session would too)."""
        if not self._started:
            return
        self._started = False
        for key in (INTERFACES_KEY, ALIVE_KEY):
            try:
                self._store.delete_state(Host, self.host_id, key)
            except Exception:   # the store may be closing under us: its session end removes them anyway
                log.debug("host %s: could not delete %s", self.host_id, key, exc_info=True)
