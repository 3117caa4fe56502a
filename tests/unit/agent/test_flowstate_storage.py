"""The local flow-state log: kept across reopen, indexed by port, stale entries dropped, damage survived."""

from __future__ import annotations

from pathlib import Path

import pytest

from midonet.agent.flowstate_storage import LOG_NAME, STORAGE_TTL, FlowStateStorage, SavedState, StorageError
from midonet.agent.flowstate_wire import FlowStateMessage
from midonet.state.conntrack import ConnTrackKey
from midonet.state.nat import NatBinding, NatKey, NatKeyType
from midonet.testing.clock import FakeClock

HOST = "6d69646f-0000-4000-8000-000000000001"
VM_PORT, UPLINK = "6d69646f-0000-4000-8000-0000000000a1", "6d69646f-0000-4000-8000-0000000000a2"
OTHER_PORT = "6d69646f-0000-4000-8000-0000000000a3"
ROUTER = "6d69646f-0000-4000-8000-0000000000c1"

CT = ConnTrackKey("10.0.2.1", 53, "192.0.2.1", 1025, 17, ROUTER)
FWD = NatKey(NatKeyType.FWD_SNAT, "10.0.1.1", 5000, "10.0.2.1", 53, 17, ROUTER)
SNAT = NatBinding("192.0.2.1", 1025)
REV = FWD.return_key(SNAT)


def _message(ingress: str = VM_PORT, egress: tuple[str, ...] = (UPLINK,), **kw: object) -> FlowStateMessage:
    base: dict[str, object] = dict(conntrack=(CT,), nat=((FWD, SNAT), (REV, FWD.return_binding())))
    base.update(kw)
    return FlowStateMessage(HOST, ingress_port=ingress, egress_ports=egress, **base)  # type: ignore[arg-type]


def _open(tmp_path: Path, clock: FakeClock) -> tuple[FlowStateStorage, SavedState]:
    storage = FlowStateStorage(tmp_path, HOST, clock)
    return storage, storage.open()


def test_state_is_kept_across_reopen(tmp_path: Path) -> None:
    clock = FakeClock()
    storage, saved = _open(tmp_path, clock)
    assert not saved
    storage.record(_message())
    storage.close()
    clock.advance(STORAGE_TTL - 1)
    storage, saved = _open(tmp_path, clock)
    assert saved.conntrack == (CT,)
    assert dict(saved.nat) == {FWD: SNAT, REV: FWD.return_binding()}
    storage.close()


def test_stale_entries_are_dropped_and_rewriting_refreshes(tmp_path: Path) -> None:
    clock = FakeClock()
    storage, _ = _open(tmp_path, clock)
    storage.record(_message())
    clock.advance(100)
    storage.record(_message(conntrack=(), nat=((FWD, SNAT),)))     # the forward key written again
    clock.advance(30)
    assert storage.for_port(VM_PORT) == SavedState((), ((FWD, SNAT),))
    assert storage.expire() == 2
    storage.close()
    storage, saved = _open(tmp_path, clock)
    assert saved == SavedState((), ((FWD, SNAT),))
    storage.close()


def test_state_is_indexed_by_every_port_the_message_names(tmp_path: Path) -> None:
    storage, _ = _open(tmp_path, FakeClock())
    storage.record(_message(ingress=OTHER_PORT, egress=(VM_PORT,), conntrack=(), nat=((FWD, SNAT),)))
    storage.record(_message(ingress=UPLINK, egress=(), nat=()))
    assert storage.for_port(VM_PORT) == SavedState((), ((FWD, SNAT),))
    assert storage.for_port(UPLINK) == SavedState((CT,), ())
    assert storage.for_port(OTHER_PORT) == SavedState((), ((FWD, SNAT),))
    assert not storage.for_port("6d69646f-0000-4000-8000-0000000000ff")
    storage.close()


@pytest.mark.parametrize("damage", ["torn", "garbled"])
def test_a_damaged_tail_is_ignored_and_the_rest_kept(tmp_path: Path, damage: str) -> None:
    clock = FakeClock()
    storage, _ = _open(tmp_path, clock)
    storage.record(_message(conntrack=(), nat=()))                  # nothing to keep: not written
    storage.record(_message(nat=()))
    storage.record(_message(conntrack=()))
    storage.close()
    data = (tmp_path / LOG_NAME).read_bytes()
    data = data[:-5] if damage == "torn" else data[:-10] + bytes(b ^ 0xFF for b in data[-10:])
    (tmp_path / LOG_NAME).write_bytes(data)
    storage, saved = _open(tmp_path, clock)
    assert saved == SavedState((CT,), ())
    assert storage.statistics().damaged == 1
    storage.record(_message(conntrack=()))                          # appended after the compacted good part
    storage.close()
    storage, saved = _open(tmp_path, clock)
    assert saved.conntrack == (CT,) and len(saved.nat) == 2
    assert storage.statistics().damaged == 0
    storage.close()


def test_compaction_keeps_only_what_is_fresh(tmp_path: Path) -> None:
    clock = FakeClock()
    storage = FlowStateStorage(tmp_path, HOST, clock, compact_after=5)
    storage.open()
    for i in range(10):
        storage.record(_message(conntrack=(CT._replace(tp_src=i),), nat=()))
    size = (tmp_path / LOG_NAME).stat().st_size
    storage.expire()
    assert (tmp_path / LOG_NAME).stat().st_size < size              # ten records became one
    assert storage.statistics().compactions == 2
    storage.close()
    storage, saved = _open(tmp_path, clock)
    assert sorted(k.tp_src for k in saved.conntrack) == list(range(10))
    storage.close()


def test_one_agent_per_directory(tmp_path: Path) -> None:
    storage, _ = _open(tmp_path, FakeClock())
    with pytest.raises(StorageError):
        FlowStateStorage(tmp_path, HOST, FakeClock()).open()
    storage.close()
    again = FlowStateStorage(tmp_path, HOST, FakeClock())
    again.open()
    again.close()
