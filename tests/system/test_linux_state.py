"""The Linux datapath's state directory: a clean teardown, and maps of another layout refused on reattach."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from midonet.datapath.base import DatapathError, Flow, FlowKey
from midonet.datapath.linux import LinuxDatapath
from midonet.datapath.linux.kernel import MAP_NAMES
from midonet.datapath.linux.loader import Bpffs, is_bpffs
from midonet.testing.linux_rig import LinuxRig


def test_close_removes_everything_it_made(rig: LinuxRig) -> None:
    dp = rig.add_linux_host("h1", "10.99.0.1", ["a"])
    dp.add_port("a")
    dp.install(Flow(FlowKey.of({"in_port": 1}), ()))
    state = dp.state_dir
    assert is_bpffs(state)
    dp.close()
    assert not state.exists()
    links = subprocess.run(["ip", "-n", rig.host_netns("h1"), "-o", "link"], capture_output=True, text=True).stdout
    assert "midonet-up" not in links
    qdiscs = subprocess.run(["tc", "-n", rig.host_netns("h1"), "qdisc", "show", "dev", "a"], capture_output=True,
                            text=True).stdout
    assert "clsact" not in qdiscs
    with pytest.raises(DatapathError):
        dp.install(Flow(FlowKey.of({"in_port": 1}), ()))


@pytest.mark.skipif(shutil.which("bpftool") is None, reason="needs bpftool to make maps of another shape")
def test_maps_of_another_layout_are_refused(rig: LinuxRig) -> None:
    rig.add_linux_host("h1", "10.99.0.1", ["a"])
    state = rig.state_root / "other"
    bpffs = Bpffs(state)
    bpffs.mount()
    try:
        bpffs.globals.mkdir(parents=True)
        for name in MAP_NAMES:
            subprocess.run(["bpftool", "map", "create", str(bpffs.globals / name), "type", "hash", "key", "4",
                            "value", "4", "entries", "8", "name", name], check=True)
        with pytest.raises(DatapathError, match="close"):
            LinuxDatapath("midonet", netns_name=rig.host_netns("h1"), state_dir=state)
        assert all((bpffs.globals / name).exists() for name in MAP_NAMES), "a refused reattach changed the state"
    finally:
        bpffs.unmount()


def test_close_after_the_namespace_went_away(rig: LinuxRig) -> None:
    dp = rig.add_linux_host("h1", "10.99.0.1", ["a"])
    dp.add_port("a")
    subprocess.run(["ip", "netns", "del", rig.host_netns("h1")], check=True)
    dp.close()
    assert not dp.state_dir.exists()
