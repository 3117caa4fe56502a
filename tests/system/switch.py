"""A learning switch as an upcall handler: the smallest agent that installs flows (system tests only).

On an upcall it learns (eth_src -> in_port); a frame to a known MAC gets a flow installed on (in_port, eth_dst,
plus the L4 5-tuple fields when `l4` is set) and is executed with it; anything else is flooded by `execute`
alone, with no flow. With `install=False` nothing is ever installed: every packet goes through userspace.
"""

from __future__ import annotations

import threading

from midonet.datapath.base import Flow, FlowKey, Output, Upcall
from midonet.datapath.linux import LinuxDatapath
from midonet.packets import parse_frame

L4_FIELDS = ("eth_type", "ip_proto", "ip_frag", "tp_src", "tp_dst")


class LearningSwitch:
    def __init__(self, dp: LinuxDatapath, *, l4: bool = False, install: bool = True) -> None:
        self.dp = dp
        self.l4 = l4
        self.install = install
        self.macs: dict[str, int] = {}
        self.installed: list[Flow] = []
        self.upcalls = 0
        self._lock = threading.Lock()
        dp.on_upcall(self)

    def __call__(self, upcall: Upcall) -> None:
        match = parse_frame(upcall.packet, upcall.port)
        eth_src, eth_dst = match.peek("eth_src"), match.peek("eth_dst")
        with self._lock:
            self.upcalls += 1
            self.macs[str(eth_src)] = upcall.port
            out = self.macs.get(str(eth_dst))
        if out is None:
            ports = [p.number for p in self.dp.ports() if p.number != upcall.port]
            self.dp.execute(upcall.packet, [Output(p) for p in ports], in_port=upcall.port)
            return
        actions = (Output(out),)
        if self.install:
            fields = ("in_port", "eth_dst", *(L4_FIELDS if self.l4 else ()))
            flow = Flow(FlowKey.from_match(match, fields), actions)
            self.dp.install(flow)
            with self._lock:
                self.installed.append(flow)
        self.dp.execute(upcall.packet, actions, in_port=upcall.port)
