"""Packets in scenario files (`testing.scenario.checks`): a VM's defaults filled into a send, expectations
normalised and matched, and the report's checks and rendering."""

from __future__ import annotations

import pytest

from midonet.simulation.packetspec import SpecError, describe_frame, split_spec
from midonet.testing.scenario import checks
from midonet.testing.scenario.checks import Check, Report, StepResult, check_send
from midonet.testing.scenario.model import Expect, Send

MAC, IP = "aa:bb:cc:00:00:01", "10.0.0.1"


def test_a_send_takes_the_vms_addresses_and_its_next_hop() -> None:
    items = split_spec("ip_dst=10.0.0.2,ip_proto=udp,tp_dst=9")
    assert checks.needs_next_hop(items)
    packet = describe_frame(checks.frame_from(items, mac=MAC, ip=IP, eth_dst="aa:bb:cc:00:00:02"))
    assert (packet["eth_src"], packet["eth_dst"], packet["ip_src"], packet["tp_dst"]) == (
        MAC, "aa:bb:cc:00:00:02", IP, 9)


def test_what_the_spec_gives_wins_over_the_vm() -> None:
    items = split_spec("eth_src=02:00:00:00:00:09,eth_dst=02:00:00:00:00:08,ip_src=10.9.9.9,ip_dst=10.0.0.2")
    assert not checks.needs_next_hop(items)
    packet = checks.packet_from(items, mac=MAC, ip=IP)
    assert (packet["eth_src"], packet["eth_dst"], packet["ip_src"]) == (
        "02:00:00:00:00:09", "02:00:00:00:00:08", "10.9.9.9")


def test_arp_and_dhcp_need_no_next_hop() -> None:
    arp = split_spec("arp_tpa=10.0.0.254")
    assert not checks.needs_next_hop(arp)
    assert checks.packet_from(arp, mac=MAC, ip=IP)["arp_spa"] == IP
    dhcp = split_spec("dhcp=discover")
    assert not checks.needs_next_hop(dhcp)
    assert checks.packet_from(dhcp, mac=MAC, ip=IP)["ip_src"] == "0.0.0.0"


@pytest.mark.parametrize(("text", "want"), [
    ("eth_src=AA-BB-CC-00-00-01", {"eth_src": MAC}),
    ("ip_proto=17,eth_type=0x0800,arp_op=2", {"ip_proto": "udp", "eth_type": "ipv4", "arp_op": "reply"}),
    ("ip_proto=99", {"ip_proto": 99}),
    ("tp_dst=0x50,ip_frag=FIRST,dhcp_yiaddr=10.0.0.9", {"tp_dst": 80, "ip_frag": "first", "dhcp_yiaddr": "10.0.0.9"}),
])
def test_expected_values_are_normalised(text: str, want: dict[str, object]) -> None:
    assert checks.expected(text) == want


@pytest.mark.parametrize("text", ["eth_src=zz", "ip_dst=1.2.3", "ip_proto=smtp", "ip_frag=maybe", "tp_dst=x"])
def test_bad_expected_values(text: str) -> None:
    with pytest.raises(SpecError):
        checks.expected(text)


def test_mismatches_name_the_keys() -> None:
    packet = {"ip_src": IP, "tp_dst": 9, "vlan": [10, 20]}
    assert checks.mismatches({"ip_src": IP, "tp_dst": 9}, packet) == []
    assert checks.mismatches({"ip_src": "10.0.0.5", "tp_dst": 9, "ip_ttl": 3}, packet) == ["ip_src", "ip_ttl"]
    assert checks.mismatches({"vlan": 20}, packet) == []


def send_step() -> Send:
    return Send("vm1", {}, "", ("traffic", 0), expect=(Expect("vm2", {}, "tp_dst=9", ("x",)),),
                expect_none_at=("vm3",))


def test_checks_of_a_send() -> None:
    arp = {"eth_type": "arp", "arp_op": "request", "arp_spa": "10.0.0.254", "arp_tpa": IP, "eth_src": MAC,
           "eth_dst": "ff:ff:ff:ff:ff:ff"}
    udp = {"eth_type": "ipv4", "ip_src": IP, "ip_dst": "10.0.0.2", "ip_proto": "udp", "tp_src": 1, "tp_dst": 9,
           "ip_ttl": 64, "eth_src": MAC, "eth_dst": MAC}
    ok = check_send(send_step(), {"vm2": [arp, udp], "vm3": [arp]})
    assert [c.ok for c in ok] == [True, True]
    wrong = check_send(send_step(), {"vm2": [arp, {**udp, "tp_dst": 10}], "vm3": [udp]})
    assert wrong[0] == Check("at vm2: tp_dst=9", False, "no packet matched; the closest has tp_dst=10")
    assert not wrong[1].ok and wrong[1].detail.startswith("it received udp 10.0.0.1:1 > 10.0.0.2:9")
    assert check_send(send_step(), {})[0].detail == "it received nothing"


def test_the_report() -> None:
    steps = (StepResult(1, "send from vm1: x", True, 3, {"vm2": []}, (Check("at vm2: tp_dst=9", True),)),
             StepResult(2, "api GET /x", False, 5, {"status": 404, "error": "no"}, error="not found (HTTP 404)"))
    report = Report("f.yaml", "1 hosts", steps)
    assert not report.ok
    assert report.lines() == [
        "f.yaml: 1 hosts",
        "PASS   1  send from vm1: x  (line 3)",
        "            ok   at vm2: tp_dst=9",
        "FAIL   2  api GET /x  (line 5)",
        "            error: not found (HTTP 404)",
        "            status: 404",
        "            error: no",
        "2 steps: 1 passed, 1 failed",
    ]
    assert [s["step"] for s in report.to_json()] == [1, 2] and report.to_json()[1]["error"] == "not found (HTTP 404)"
