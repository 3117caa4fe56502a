"""The scenario file format (docs/sandbox.md): what a good file becomes, and a clear error, naming the place in the
file, for every kind of bad file that can be told before anything runs."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from pathlib import Path

import pytest

from midonet.testing.scenario.model import (
    ApiCall,
    Bind,
    RestartAgent,
    ScenarioError,
    Send,
    SetLink,
    Unbind,
    Wait,
    describe,
)
from midonet.testing.scenario.parse import parse, read

GOOD = """\
hosts: [{name: h1, tunnel_ip: 10.0.0.8}, {name: h2, tunnel_ip: 10.0.0.9}]
tenant: tenant-a
topology:
  chains: [{name: c1, rules: [{type: dnat, flowAction: accept, nwDstAddress: 100.100.100.100, nwDstLength: 32,
                               inPorts: [r1-p1], natTargets: [{addressFrom: 172.16.2.1, addressTo: 172.16.2.1,
                               portFrom: 0, portTo: 0}]}]}]
  bridges: [{name: br1, ports: [{name: br1-p1}, {name: br1-p2, outboundFilterId: c1}, {name: br1-r}]}]
  routers: [{name: r1, inboundFilterId: c1,
             ports: [{name: r1-p1, portAddress: 172.16.1.254, networkAddress: 172.16.1.0, networkLength: 24,
                      link: br1-r}],
             routes: [{dstNetworkAddr: 172.16.1.0, dstNetworkLength: 24, nextHopPort: r1-p1, weight: 100}]}]
  port_groups: [{name: pg1, stateful: true, ports: [r1-p1]}]
  ip_addr_groups: [{name: g1, addresses: [10.0.0.1]}]
  load_balancers: [{name: lb1, router: r1, health_monitors: [{name: hm1, type: TCP}],
                    pools: [{name: pool1, healthMonitorId: hm1,
                             members: [{address: 10.0.2.1, protocolPort: 80, weight: 1}],
                             vips: [{address: 100.0.0.10, protocolPort: 80, sessionPersistence: SOURCE_IP}]}]}]
  mirrors: [{name: m1, toPortId: br1-p2, conditions: [{nwProto: 1}]}]
bindings:
  - {port: br1-p1, host: h1, interface: vm1, mac: "aa:bb:cc:00:01:01", ip: 172.16.1.1/24, gw: 172.16.1.254}
traffic:
  - send: {from: vm1, packet: "ip_dst=172.16.2.1,ip_proto=udp,tp_src=9,tp_dst=9"}
    expect: [{at: vm1, packet: "ip_src=172.16.1.1,ip_dst=172.16.2.1,tp_dst=9"}]
    expect_none_at: [vm1]
  - do: {api: PUT, path: "/bridges/{br1}", body: {name: br1, inboundFilterId: "{c1}"}}
  - do: {interface: vm1, state: down}
  - do: {restart_agent: h1}
  - do: {bind: br1-p2, host: h2, interface: vm9}
  - do: {unbind: br1-p2}
  - do: {wait: 1.5}
"""


def test_a_good_file_becomes_typed_records() -> None:
    s = parse(GOOD, "good.yaml")
    assert [(h.name, h.tunnel_ip) for h in s.hosts] == [("h1", "10.0.0.8"), ("h2", "10.0.0.9")]
    assert s.tenant == "tenant-a"
    assert [o.kind for o in s.objects] == ["chains", "bridges", "routers", "port_groups", "ip_addr_groups",
                                          "load_balancers", "mirrors"]
    router = s.objects[2]
    assert router.body == {"inboundFilterId": "c1"}                  # names stay names until deployment
    assert [(c.kind, c.name, c.link) for c in router.children] == [("ports", "r1-p1", "br1-r"),
                                                                  ("routes", None, None)]
    lb = s.objects[5]
    assert lb.router == "r1"
    assert [c.kind for o in lb.walk() for c in o.children] == ["health_monitors", "pools", "pool_members", "vips"]
    assert s.objects[3].members == ("r1-p1",) and s.objects[4].members == ("10.0.0.1",)
    assert s.names["c1"] == "chains" and s.names["h2"] == "hosts" and s.names["pool1"] == "pools"
    [vm] = s.bindings
    assert (vm.mac, vm.ip, vm.gw) == ("aa:bb:cc:00:01:01", ipaddress.IPv4Interface("172.16.1.1/24"), "172.16.1.254")
    assert [type(step) for step in s.steps] == [Send, ApiCall, SetLink, RestartAgent, Bind, Unbind, Wait]
    send = s.steps[0]
    assert isinstance(send, Send) and send.items["tp_dst"] == "9" and send.expect_none_at == ("vm1",)
    assert [describe(step) for step in s.steps[1:]] == [
        "api PUT /bridges/{br1}", "interface vm1 down", "restart the agent of h1", "bind br1-p2 to vm9 on h2",
        "unbind br1-p2", "wait 1.5 s"]
    assert set(s.vms()) == {"vm1", "vm9"}
    assert s.line(send.where) == 22


def test_read_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(GOOD)
    assert read(path).source == str(path)
    with pytest.raises(ScenarioError, match=r"missing.yaml: cannot read the file"):
        read(tmp_path / "missing.yaml")


def error(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse(textwrap.dedent(text), "bad.yaml")
    return str(caught.value)


HOSTS = "hosts: [{name: h1, tunnel_ip: 10.0.0.8}]\n"
NET = HOSTS + """\
topology:
  bridges: [{name: br1, ports: [{name: p1}, {name: p2}]}]
bindings: [{port: p1, host: h1, interface: vm1, ip: 10.1.0.1/24}]
"""


@pytest.mark.parametrize(("text", "message"), [
    ("hosts: [{name: h1, tunnel_ip: 10.0.0.8}\ntopology: {}\n", r"^bad.yaml:2: YAML error: expected ','"),
    ("- 1\n", r"^bad.yaml:1: a scenario file must be a mapping, not a list$"),
    ("topology: {}\n", r"^bad.yaml:1: a scenario file needs 'hosts'$"),
    (HOSTS + "hosts: []\n", r"^bad.yaml:2: 'hosts' is given twice$"),
    (HOSTS + "traffics: []\n", r"^bad.yaml:2: traffics: unknown member 'traffics' of a scenario file; the members "
                               r"are hosts, tenant, topology, bindings, traffic$"),
    ("hosts: [{name: h1, tunnel_ip: 10.0.0.300}]\n", r"^bad.yaml:1: hosts\[0\].tunnel_ip: not an IPv4 address"),
    ("hosts: [{name: h1, tunnel_ip: 10.0.0.8}, {name: h2, tunnel_ip: 10.0.0.8}]\n",
     r"hosts\[1\].tunnel_ip: tunnel_ip 10.0.0.8 is given to two hosts"),
    (HOSTS + "topology: {switches: []}\n", r"^bad.yaml:2: topology.switches: unknown member 'switches'"),
    (HOSTS + "topology:\n  bridges: [{name: b}]\n  routers: [{name: b}]\n",
     r"^bad.yaml:4: topology.routers\[0\].name: the name 'b' is given twice \(first at line 3\)$"),
    (HOSTS + "topology:\n  bridges: [{name: h1}]\n", r"the name 'h1' is given twice"),
    (HOSTS + "topology:\n  bridges:\n    - name: b\n      ports: [{name: p, outboundFilterId: c9}]\n",
     r"^bad.yaml:5: topology.bridges\[0\].ports\[0\].outboundFilterId: unknown name 'c9': no chain is called that"),
    (HOSTS + "topology:\n  bridges: [{name: b, inboundFilterId: b}]\n",
     r"topology.bridges\[0\].inboundFilterId: 'b' is a bridge, not a chain$"),
    (HOSTS + "topology:\n  chains: [{name: c, rules: [{type: drop, inPorts: [p1, nope]}]}]\n  bridges: "
     "[{name: b, ports: [{name: p1}]}]\n", r"topology.chains\[0\].rules\[0\].inPorts\[1\]: unknown name 'nope'"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: [{name: p1, link: p1}]}]\n",
     r"ports\[0\].link: a port cannot be linked to itself"),
    (HOSTS + "topology:\n  port_groups: [{name: g, ports: [nope]}]\n", r"port_groups\[0\].ports\[0\]: unknown name"),
    (HOSTS + "topology:\n  ip_addr_groups: [{name: g, addresses: [1.2.3]}]\n", r"addresses\[0\]: not an IPv4"),
    (HOSTS + "topology:\n  load_balancers: [{name: lb, router: nope}]\n", r"load_balancers\[0\].router: unknown"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: {name: p}}]\n",
     r"topology.bridges\[0\].ports: ports must be a list, not a mapping"),
    (NET + "bindings: []\n", r"'bindings' is given twice"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: [{name: p1}]}]\n"
     "bindings: [{port: p1, host: h2, interface: vm1}]\n", r"bindings\[0\].host: unknown name 'h2': no host"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: [{name: p1}]}]\n"
     "bindings: [{port: b, host: h1, interface: vm1}]\n", r"bindings\[0\].port: 'b' is a bridge, not a port"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: [{name: p1}]}]\n"
     "bindings: [{port: p1, host: h1, interface: vm1, ip: 10.0.0.1}]\n",
     r"bindings\[0\].ip: give the address with its prefix length, e.g. 10.0.0.1/24"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: [{name: p1}]}]\n"
     "bindings: [{port: p1, host: h1, interface: vm1, mac: zz}]\n", r"bindings\[0\].mac: not a MAC address"),
    (HOSTS + "topology:\n  bridges: [{name: b, ports: [{name: p1}]}]\n"
     "bindings: [{port: p1, host: h1, interface: vm1, colour: red}]\n", r"unknown member 'colour' of a binding"),
    (NET + "traffic:\n  - send: {from: vm2, packet: ip_dst=10.1.0.2}\n",
     r"^bad.yaml:6: traffic\[0\].send.from: unknown VM 'vm2': VMs are the interfaces of the bindings \(vm1\)$"),
    (NET + "traffic:\n  - send: {from: vm1, packet: 'ip_dst=10.1.0.2,tp_dstt=9'}\n",
     r"traffic\[0\].send.packet: bad packet spec: tp_dstt: unknown key"),
    (NET + "traffic:\n  - send: {from: vm1, packet: 'ip_dst=10.1.0.300'}\n",
     r"traffic\[0\].send.packet: bad packet spec: ip_dst: not an IPv4 address"),
    (NET + "traffic:\n  - send: {from: vm1, packet: ip_dst=10.1.0.2}\n    expect: [{at: vm1, packet: 'ttl=3'}]\n",
     r"^bad.yaml:7: traffic\[0\].expect\[0\].packet: bad packet spec: ttl: unknown key"),
    (NET + "traffic:\n  - send: {from: vm1, packet: ip_dst=10.1.0.2}\n    expect_none_at: [vm7]\n",
     r"traffic\[0\].expect_none_at\[0\]: unknown VM 'vm7'"),
    (NET + "traffic:\n  - send: {from: vm1, packet: ip_dst=10.1.0.2}\n    do: {wait: 1}\n",
     r"traffic\[0\]: a traffic step has either `send`"),
    (NET + "traffic:\n  - do: {wait: soon}\n", r"traffic\[0\].do.wait: wait takes seconds"),
    (NET + "traffic:\n  - do: {api: PATCH, path: /bridges}\n", r"traffic\[0\].do.api: api must be GET, POST"),
    (NET + "traffic:\n  - do: {api: GET, path: bridges}\n", r"traffic\[0\].do.path: path must start with /"),
    (NET + "traffic:\n  - do: {api: GET, path: '/bridges/{br2}'}\n",
     r"traffic\[0\].do.path: unknown name \{br2\}: no host or object is called 'br2'"),
    (NET + "traffic:\n  - do: {api: PUT, path: '/bridges/{br1}', body: {inboundFilterId: br1}}\n",
     r"traffic\[0\].do.body.inboundFilterId: 'br1' is a bridge, not a chain"),
    (NET + "traffic:\n  - do: {interface: vm1, state: sideways}\n", r"traffic\[0\].do.state: state must be up"),
    (NET + "traffic:\n  - do: {restart_agent: vm1}\n", r"traffic\[0\].do.restart_agent: unknown name 'vm1'"),
    (NET + "traffic:\n  - do: {unbind: br1}\n", r"traffic\[0\].do.unbind: 'br1' is a bridge, not a port"),
    (NET + "traffic:\n  - do: {jump: high}\n", r"traffic\[0\].do: `do` takes one of api, interface"),
    (HOSTS + "hosts2: []\n", r"unknown member 'hosts2'"),
])
def test_a_bad_file_is_refused_with_its_place(text: str, message: str) -> None:
    got = error(text)
    assert re.search(message, got), got


def test_a_vm_is_known_only_after_it_is_made() -> None:
    text = NET + "traffic:\n  - send: {from: vm2, packet: ip_dst=10.1.0.1}\n" \
                 "  - do: {bind: p2, host: h1, interface: vm2, ip: 10.1.0.2/24}\n"
    assert "unknown VM 'vm2'" in error(text)
    moved = NET + "traffic:\n  - do: {bind: p2, host: h1, interface: vm2, ip: 10.1.0.2/24}\n" \
                  "  - send: {from: vm2, packet: ip_dst=10.1.0.1}\n"
    assert isinstance(parse(moved).steps[1], Send)


def test_a_vm_made_again_must_be_the_same() -> None:
    two_hosts = NET.replace("hosts: [{name: h1, tunnel_ip: 10.0.0.8}]",
                            "hosts: [{name: h1, tunnel_ip: 10.0.0.8}, {name: h2, tunnel_ip: 10.0.0.9}]")
    assert "is a VM on h1 already (line 4)" in error(
        two_hosts + "traffic:\n  - do: {bind: p1, host: h2, interface: vm1}\n")
    assert "was made with another ip" in error(
        NET + "traffic:\n  - do: {bind: p2, host: h1, interface: vm1, ip: 10.9.9.9/24}\n")
    again = parse(NET + "traffic:\n  - do: {bind: p2, host: h1, interface: vm1}\n").steps[0]
    assert isinstance(again, Bind) and again.vm.ip == ipaddress.IPv4Interface("10.1.0.1/24")


def test_a_vm_without_an_address_must_be_told_the_addresses() -> None:
    text = NET.replace(", ip: 10.1.0.1/24", "") + "traffic:\n  - send: {from: vm1, packet: ip_dst=10.1.0.2}\n"
    assert "VM vm1 has no ip: the packet must give ip_src" in error(text)
    ok = text.replace("packet: ip_dst=10.1.0.2", "packet: 'ip_src=10.1.0.1,ip_dst=10.1.0.2,eth_dst=02:00:00:00:00:02'")
    assert isinstance(parse(ok).steps[0], Send)


def test_ids_may_be_given_where_names_go() -> None:
    text = HOSTS + "topology:\n  bridges: [{name: b, inboundFilterId: 7d1c0b38-1111-4d5b-9b0a-00000000000a}]\n"
    assert parse(text).objects[0].body["inboundFilterId"] == "7d1c0b38-1111-4d5b-9b0a-00000000000a"
