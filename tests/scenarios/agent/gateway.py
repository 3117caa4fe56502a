"""The L4-state topology of the original's tests (spec 11), over fake hosts: a router with three exterior ports.

    vm 10.0.0.1 (h1, "down")       ext1 192.168.1.1 (h2, "up1")       ext2 192.168.2.1 (h3, "up2")
            |                              |                                  |
      down 10.0.0.254 ------------ [router] ------------ up1 192.168.1.254 / up2 192.168.2.254
                                      default route via ext1; "pre" / "post" chains (inbound / outbound)

The two uplinks may form a stateful port group (spec 4.3): a connection that leaves by up1 may come back by up2.
`ext1` and `ext2` are the upstream routers (`FakeVm`s answering ARP for their addresses); the Internet behind them
is `INTERNET` (8.8.8.8). A fourth host h4, with no port, is where the VM's port moves in the migration scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass

from midonet.packets.flowmatch import FlowMatch, parse_frame
from midonet.testing import frames
from midonet.testing.fakehosts import FakeCloud, FakeHost, FakeVm
from midonet.topology.chains import Chain, RuleAction
from midonet.topology.devices import Port, Router
from midonet.topology.groups import PortGroup

DOWN_MAC, UP1_MAC, UP2_MAC = "02:00:00:00:aa:01", "02:00:00:00:aa:02", "02:00:00:00:aa:03"
VM_MAC, EXT1_MAC, EXT2_MAC = "02:00:00:00:00:01", "02:00:00:00:01:01", "02:00:00:00:02:01"
VM_IP, EXT1_IP, EXT2_IP = "10.0.0.1", "192.168.1.1", "192.168.2.1"
INTERNET = "8.8.8.8"
SNAT_IP = "203.0.113.1"            # the router's dynamic SNAT address
SERVICE_IP = "203.0.113.20"        # port forwarding: SERVICE_IP:80 -> VM_IP:8080
FLOATING_IP = "203.0.113.10"       # the VM's floating IP


@dataclass
class Gateway:
    cloud: FakeCloud
    router: Router
    pre: Chain
    post: Chain
    down: Port
    up1: Port
    up2: Port
    vm: FakeVm
    ext1: FakeVm
    ext2: FakeVm
    hosts: dict[str, FakeHost]
    group: PortGroup | None = None

    # ---- rules ----

    def source_nat(self, ports: tuple[int, int] = (1024, 65535)) -> Gateway:
        """The VM's subnet leaves by the uplinks as SNAT_IP (leased ports); replies to SNAT_IP come back."""
        t = self.cloud.topology
        t.nat(self.post, "snat", (SNAT_IP, SNAT_IP, *ports), nw_src_ip="10.0.0.0/24",
              out_port_ids=(self.up1.id, self.up2.id))
        t.nat(self.pre, "rev_snat", nw_dst_ip=f"{SNAT_IP}/32")
        self.cloud.settle()
        return self

    def port_forwarding(self) -> Gateway:
        """SERVICE_IP:80 (UDP) -> VM_IP:8080, and the VM's replies translated back (before `source_nat`: the
        reverse rule must come first in "post", as Neutron orders them)."""
        t = self.cloud.topology
        t.nat(self.pre, "dnat", (VM_IP, VM_IP, 8080, 8080), nw_dst_ip=f"{SERVICE_IP}/32", nw_proto=17,
              tp_dst=(80, 80))
        t.nat(self.post, "rev_dnat", nw_src_ip=f"{VM_IP}/32")
        self.cloud.settle()
        return self

    def floating_ip(self) -> Gateway:
        """FLOATING_IP <-> VM_IP, as Neutron writes it: static DNAT in, static SNAT out through the uplinks."""
        t = self.cloud.topology
        t.nat(self.pre, "dnat", VM_IP, nw_dst_ip=f"{FLOATING_IP}/32")
        t.nat(self.post, "snat", FLOATING_IP, nw_src_ip=f"{VM_IP}/32", out_port_ids=(self.up1.id, self.up2.id))
        self.cloud.settle()
        return self

    def only_replies_from_outside(self) -> Gateway:
        """Uplink inbound filters: IPv4 return flows only (a connection must have been started from inside, where
        the downlink's inbound filter asks whether a packet starts one: the answer is tracked, spec 3.6)."""
        t = self.cloud.topology
        guard, inside = t.chain("uplink-in"), t.chain("downlink-in")
        t.rule(guard, RuleAction.ACCEPT, match_return_flow=True)
        t.rule(guard, RuleAction.DROP, dl_type=0x0800)
        t.rule(inside, RuleAction.ACCEPT, match_forward_flow=True)
        t.filters(Port, self.up1.id, inbound=guard)
        t.filters(Port, self.up2.id, inbound=guard)
        t.filters(Port, self.down.id, inbound=inside)
        self.cloud.settle()
        return self

    # ---- frames ----

    def from_vm(self, dst: str, *, sport: int = 5000, dport: int = 53) -> bytes:
        return frames.udp(VM_MAC, DOWN_MAC, VM_IP, dst, sport=sport, dport=dport)

    def from_ext1(self, src: str, dst: str, *, sport: int, dport: int) -> bytes:
        return frames.udp(EXT1_MAC, UP1_MAC, src, dst, sport=sport, dport=dport)

    def from_ext2(self, src: str, dst: str, *, sport: int, dport: int) -> bytes:
        return frames.udp(EXT2_MAC, UP2_MAC, src, dst, sport=sport, dport=dport)


def received(vm: FakeVm) -> list[FlowMatch]:
    """What `vm` received since the last call, parsed."""
    return [parse_frame(f) for f in vm.take()]


def gateway(cloud: FakeCloud, *, stateful: bool = True) -> Gateway:
    """The topology of the module docstring on hosts h1-h4 of `cloud`."""
    t = cloud.topology
    hosts = {name: cloud.add_host(name) for name in ("h1", "h2", "h3", "h4")}
    vm = cloud.vm(hosts["h1"], "down", VM_MAC, VM_IP)
    ext1 = cloud.vm(hosts["h2"], "up1", EXT1_MAC, EXT1_IP)
    ext2 = cloud.vm(hosts["h3"], "up2", EXT2_MAC, EXT2_IP)
    router = t.router("gateway")
    down = t.router_port(router, "10.0.0.254/24", DOWN_MAC, host_id=hosts["h1"].host_id, interface="down")
    up1 = t.router_port(router, "192.168.1.254/24", UP1_MAC, host_id=hosts["h2"].host_id, interface="up1")
    up2 = t.router_port(router, "192.168.2.254/24", UP2_MAC, host_id=hosts["h3"].host_id, interface="up2")
    t.route(router, "10.0.0.0/24", down)
    t.route(router, "192.168.1.0/24", up1)
    t.route(router, "192.168.2.0/24", up2)
    t.route(router, "0.0.0.0/0", up1, gateway=EXT1_IP)
    pre, post = t.chain("pre"), t.chain("post")
    router = t.filters(Router, router.id, inbound=pre, outbound=post)
    group = t.port_group("uplinks", up1, up2, stateful=True) if stateful else None
    cloud.settle()
    return Gateway(cloud, router, pre, post, t.get(Port, down.id), t.get(Port, up1.id), t.get(Port, up2.id), vm,
                   ext1, ext2, hosts, group)
