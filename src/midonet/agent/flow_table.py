"""The flow table: the flows this agent wants in its datapath, with their tags, expiry and removal callbacks.

Role: the original's `FlowController` + `FlowExpirationIndexer` + `FlowInvalidator` (spec 3.12), kept the way
OVN's controller keeps flows: the table holds the *desired* flows (what the agent decided), each marked whether
the datapath confirmed it (*installed*); `reconcile()` pushes the difference (installs what is missing, removes
what the datapath holds and nobody wants), so a datapath that lost or kept flows behind the agent's back (a
restart, a failed install) converges again.

    FlowTable
    ├── entries   {FlowKey: FlowEntry}   key, actions, tags, expiry class, hard deadline, idle record, callbacks
    ├── groups    {tag set: {FlowKey}}   the flows of each distinct tag set   } the invalidation index: flows
    └── by_tag    {FlowTag: {tag set}}   the tag sets holding each tag         } share tag sets (every flow
                                                                                  between two VMs has the same
                                                                                  two dozen tags), so a new
                                                                                  flow is one set add, not one
                                                                                  a tag

Expiry (spec 3.12), hard timeouts from installation, by class:

    FLOW       60 s   forward and drop flows
    STATEFUL   30 s   flows that touched flow state (half the state key's 60 s lifetime)
    ERROR       5 s   temporary drops, give-up drops (a packet that waited too long)
    TUNNEL    300 s   tunnel ingress -> local port flows (no simulation)

plus an *idle* timeout: a flow whose packet count has not moved for `idle_timeout` seconds of the injected clock is
removed too. Time comes only from the clock handed in, never from the stats' own `last_used` (the datapath's clock
may differ). `expire()` (the agent's tick, every second) does work for the flows that are due, not for every flow:
hard deadlines and idle checks sit in two heaps, and only the flows due an idle check (`idle_timeout` after their
count last moved, as far as the table knows) have their stats read (`Datapath.flow_stats`). A flow seen moving is
due again `idle_timeout` later, so an idle flow goes between `idle_timeout` and twice that after its last packet.
(Reading every flow's stats every second held the agent's lock 30-130 ms a tick with 15,000 flows.) Removed flows
leave their heap items behind; they are skipped when they come up, and the heaps are rebuilt when they hold more
than twice the flows.

Invalidation: `invalidate(tag)` removes every flow tagged with it, from the table and the datapath, at once. A
removed flow's callbacks run once (MAC-learning references, later conntrack / NAT references), whatever removed it:
invalidation, expiry, replacement by a flow with the same key, or `clear()`.

Inherited flows: a datapath reattached by a restarted agent still holds the flows the previous agent installed.
They keep forwarding while the new agent starts (`inherit(until)`), but nothing could invalidate them (their tags
went with the previous agent), so from `until` on `expire()` removes them, at most `INHERITED_REMOVALS` a call
(the original's `reclaim_datapath` expires them at 5,000 a second): the next packet of each misses and is
simulated afresh. A flow the agent installs meanwhile with the same key is its own and stays.

Threads: not thread-safe; the agent calls it under its `EventGate` lock.

May import: `midonet.datapath`, `midonet.simulation.results` (expiry constants, `FlowTag`), `agent.interning`.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from midonet.agent.interning import Memo, same
from midonet.datapath.base import Action, Datapath, DatapathError, Flow, FlowKey
from midonet.simulation.results import ERROR_EXPIRATION, FLOW_EXPIRATION, STATEFUL_FLOW_EXPIRATION, FlowTag
from midonet.state.clock import Clock

log = logging.getLogger(__name__)

TUNNEL_FLOW_EXPIRATION = 300.0
IDLE_EXPIRATION = 15.0
"""Seconds without a packet after which a flow is removed (checked on every `expire()`)."""
INHERITED_REMOVALS = 5000
"""At most this many inherited flows are removed by one `expire()` (the agent's tick: once a second)."""


class ExpiryClass(enum.Enum):
    """How long a flow lives after it was installed (spec 3.12 "Expiration classes")."""

    FLOW = FLOW_EXPIRATION
    STATEFUL = STATEFUL_FLOW_EXPIRATION
    ERROR = ERROR_EXPIRATION
    TUNNEL = TUNNEL_FLOW_EXPIRATION

    @classmethod
    def for_timeout(cls, seconds: float) -> ExpiryClass:
        """The class of a simulation result's `expiration` (a dictionary probe: once per new flow)."""
        return _EXPIRY_BY_TIMEOUT.get(seconds, cls.FLOW)


_EXPIRY_BY_TIMEOUT: dict[float, ExpiryClass] = {c.value: c for c in ExpiryClass}
_TAG_SETS = Memo[frozenset[FlowTag], frozenset[FlowTag]]()
"""One object for equal tag sets (every flow between two VMs has the same tags whatever its ports)."""


class Removal(enum.StrEnum):
    """Why a flow left the table (the argument of its removal callbacks)."""

    INVALIDATED = "invalidated"
    EXPIRED = "expired"            # its hard timeout passed
    IDLE = "idle"                  # no packet for `idle_timeout`
    REPLACED = "replaced"          # a flow with the same key was installed
    CLEARED = "cleared"            # the agent stopped or the flow was removed explicitly


RemovalCallback = Callable[[Removal], None]


@dataclass(slots=True, eq=False)
class FlowEntry:
    key: FlowKey
    actions: tuple[Action, ...]
    tags: frozenset[FlowTag]
    expiry: ExpiryClass
    created: float
    callbacks: tuple[RemovalCallback, ...] = ()   # a tuple: most flows have none (no object to collect)
    installed: bool = False        # the datapath confirmed it (desired flows may lag behind a failed install)
    packets: int = 0               # datapath packet count when last looked at
    active: float = 0.0            # clock time the packet count last moved (or the flow was installed); its stats
                                   # are read next at active + idle timeout, it expires at created + expiry seconds


@dataclass(frozen=True, slots=True)
class FlowTableStatistics:
    flows: int = 0                 # in the table now
    installed: int = 0             # installs since creation (a replacement counts again)
    removed: int = 0               # flows that left the table, any reason
    invalidated: int = 0           # of which by invalidation
    expired: int = 0               # of which by hard or idle expiry
    install_failures: int = 0      # the datapath refused an install (retried by `reconcile`)
    strays_removed: int = 0        # datapath flows nobody wanted, removed by `reconcile`


class FlowTable:
    """The agent's desired flows; see the module docstring."""

    def __init__(self, datapath: Datapath, clock: Clock, *, idle_timeout: float | None = IDLE_EXPIRATION) -> None:
        self._dp = datapath
        self._clock = clock
        self._idle = idle_timeout
        self._entries: dict[FlowKey, FlowEntry] = {}
        self._deadlines: list[tuple[float, int, FlowEntry]] = []   # heaps: (when, a tie-breaker, the flow)
        self._checks: list[tuple[float, int, FlowEntry]] = []
        self._order = itertools.count()
        self._groups: dict[frozenset[FlowTag], set[FlowKey]] = {}
        self._by_tag: dict[FlowTag, set[frozenset[FlowTag]]] = {}
        self._counts: Counter[str] = Counter()
        self._dirty = False        # an install failed since the last reconcile
        self._inherited: set[FlowKey] = set()
        self._inherited_until = 0.0

    # ---- installing ----

    def install(self, key: FlowKey, actions: Iterable[Action], tags: Iterable[FlowTag], expiry: ExpiryClass,
                callbacks: Iterable[RemovalCallback] = ()) -> FlowEntry:
        """Add a flow (replacing the one with the same key) and push it to the datapath."""
        old = self._entries.get(key)
        if old is not None:
            self._drop(old, Removal.REPLACED)
        now = self._clock.now()
        entry = FlowEntry(key, tuple(actions), _TAG_SETS(frozenset(tags), same), expiry, now, tuple(callbacks),
                          active=now)
        self._entries[key] = entry
        self._schedule(entry)
        group = self._groups.get(entry.tags)
        if group is None:
            group = self._groups[entry.tags] = set()
            by_tag = self._by_tag
            for tag in entry.tags:
                holders = by_tag.get(tag)
                if holders is None:
                    holders = by_tag[tag] = set()
                holders.add(entry.tags)
        group.add(key)
        self._counts["installed"] += 1
        self._push(entry)
        return entry

    def _push(self, entry: FlowEntry) -> None:
        try:
            self._dp.install(Flow(entry.key, entry.actions))
        except DatapathError as e:
            self._counts["install_failures"] += 1
            self._dirty = True
            log.warning("flow table: install of %s failed: %s", entry.key, e)
            return
        entry.installed = True

    # ---- removing ----

    def invalidate(self, tag: FlowTag) -> int:
        """Remove every flow tagged `tag`; how many."""
        keys = self._tagged_keys(tag)
        if not keys:
            return 0
        removed = 0
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None:
                self._remove(entry, Removal.INVALIDATED)
                removed += 1
        return removed

    def invalidate_all(self, tags: Iterable[FlowTag]) -> int:
        return sum(self.invalidate(tag) for tag in tags)

    def remove(self, key: FlowKey) -> bool:
        """Remove one flow; whether there was one."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._remove(entry, Removal.CLEARED)
        return True

    def inherit(self, until: float) -> int:
        """Keep the flows the datapath holds and this table does not until `until` (module docstring); how many."""
        self._inherited = {flow.key for flow, _ in self._dp.flows() if flow.key not in self._entries}
        self._inherited_until = until
        return len(self._inherited)

    def inherit_until(self, until: float) -> None:
        """Move the inherited flows' removal to `until` if sooner."""
        self._inherited_until = min(self._inherited_until, until)

    @property
    def inherited(self) -> int:
        """How many inherited flows are still in the datapath."""
        return len(self._inherited)

    def _expire_inherited(self, now: float) -> None:
        if not self._inherited or now < self._inherited_until:
            return
        batch = [self._inherited.pop() for _ in range(min(INHERITED_REMOVALS, len(self._inherited)))]
        for key in batch:
            if key in self._entries:
                continue
            try:
                self._dp.remove(key)
            except DatapathError:       # gone already (a port removed with its flows)
                continue
            self._counts["strays_removed"] += 1

    def expire(self) -> int:
        """Remove the flows past their hard deadline or idle for `idle_timeout`, and inherited flows past their
        grace; how many of this table's own. Only the flows due are looked at (module docstring)."""
        now = self._clock.now()
        self._expire_inherited(now)
        expired = 0
        for entry in self._due(self._deadlines, now):
            self._remove(entry, Removal.EXPIRED)
            expired += 1
        if self._idle is None:
            return expired
        due = self._due(self._checks, now)
        if not due:
            return expired
        stats = self._dp.flow_stats([entry.key for entry in due])
        for entry in due:
            current = stats.get(entry.key)
            if current is not None and current.packets != entry.packets:
                entry.packets = current.packets
                entry.active = now
                heapq.heappush(self._checks, (now + self._idle, next(self._order), entry))
            else:
                self._remove(entry, Removal.IDLE)
                expired += 1
        return expired

    def _schedule(self, entry: FlowEntry) -> None:
        order = self._order
        heapq.heappush(self._deadlines, (entry.created + entry.expiry.value, next(order), entry))
        if self._idle is not None:
            heapq.heappush(self._checks, (entry.active + self._idle, next(order), entry))
        if len(self._deadlines) > 2 * len(self._entries) + 1024:
            self._rebuild()

    def _due(self, heap: list[tuple[float, int, FlowEntry]], now: float) -> list[FlowEntry]:
        """Pop the items due by `now`; the flows still in the table among them."""
        entries = self._entries
        due = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)[2]
            if entries.get(entry.key) is entry:
                due.append(entry)
        return due

    def _rebuild(self) -> None:
        """The heaps again from the flows in the table (dropping the items of removed ones)."""
        order = self._order
        self._deadlines = [(e.created + e.expiry.value, next(order), e) for e in self._entries.values()]
        heapq.heapify(self._deadlines)
        if self._idle is not None:
            idle = self._idle
            self._checks = [(e.active + idle, next(order), e) for e in self._entries.values()]
            heapq.heapify(self._checks)

    def clear(self) -> None:
        """Remove every flow (the agent is stopping)."""
        for entry in list(self._entries.values()):
            self._remove(entry, Removal.CLEARED)
        self._deadlines, self._checks = [], []

    def _remove(self, entry: FlowEntry, why: Removal) -> None:
        self._drop(entry, why)
        if entry.installed:
            try:
                self._dp.remove(entry.key)
            except DatapathError as e:
                log.warning("flow table: removal of %s failed: %s", entry.key, e)

    def _drop(self, entry: FlowEntry, why: Removal) -> None:
        """Forget `entry` (not the datapath's copy) and run its callbacks."""
        del self._entries[entry.key]
        group = self._groups.get(entry.tags)
        if group is not None:
            group.discard(entry.key)
            if not group:
                del self._groups[entry.tags]
                for tag in entry.tags:
                    holders = self._by_tag.get(tag)
                    if holders is not None:
                        holders.discard(entry.tags)
                        if not holders:
                            del self._by_tag[tag]
        self._counts["removed"] += 1
        if why is Removal.INVALIDATED:
            self._counts["invalidated"] += 1
        elif why is Removal.EXPIRED or why is Removal.IDLE:
            self._counts["expired"] += 1
        for callback in entry.callbacks:
            try:
                callback(why)
            except Exception:
                log.exception("flow table: removal callback failed")

    # ---- desired vs installed ----

    def reconcile(self) -> tuple[int, int]:
        """Make the datapath hold exactly the desired flows: (flows installed again, stray flows removed)."""
        self._dirty = False
        held = {flow.key: flow for flow, _ in self._dp.flows()}
        reinstalled = 0
        for entry in self._entries.values():
            flow = held.get(entry.key)
            if flow is None or flow.actions != entry.actions:
                entry.installed = False
                self._push(entry)
                reinstalled += entry.installed
        strays = [key for key in held if key not in self._entries and key not in self._inherited]
        for key in strays:
            try:
                self._dp.remove(key)
            except DatapathError as e:
                log.warning("flow table: removal of stray %s failed: %s", key, e)
        self._counts["strays_removed"] += len(strays)
        return reinstalled, len(strays)

    @property
    def needs_reconcile(self) -> bool:
        """Whether an install failed since the last `reconcile` (the agent's tick reconciles then)."""
        return self._dirty

    # ---- reading ----

    def get(self, key: FlowKey) -> FlowEntry | None:
        return self._entries.get(key)

    def tagged(self, tag: FlowTag) -> list[FlowEntry]:
        return [self._entries[k] for k in self._tagged_keys(tag)]

    def _tagged_keys(self, tag: FlowTag) -> list[FlowKey]:
        groups = self._groups
        return [key for tags in self._by_tag.get(tag, ()) for key in groups.get(tags, ())]

    def entries(self) -> list[FlowEntry]:
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def statistics(self) -> FlowTableStatistics:
        c = self._counts
        return FlowTableStatistics(len(self._entries), c["installed"], c["removed"], c["invalidated"], c["expired"],
                                   c["install_failures"], c["strays_removed"])
