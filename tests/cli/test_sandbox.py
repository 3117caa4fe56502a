"""`midonet sandbox run`: every example under examples/ passes; failing expectations, failing steps and bad files
exit 1 with a line that says what and where.

The command builds everything in-process (embedded store, the API on a loopback port, fake hosts with real
agents); it needs no server of the `cli` fixture, so these tests run it with typer's CliRunner directly.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from midonet.cli.main import app

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))

ROUTED = """\
hosts: [{name: h1, tunnel_ip: 10.0.0.8}, {name: h2, tunnel_ip: 10.0.0.9}]
tenant: t
topology:
  bridges:
    - {name: left, ports: [{name: l1}, {name: l2}, {name: left-r}]}
    - {name: right, ports: [{name: r1}, {name: right-r}]}
  routers:
    - name: router
      ports:
        - {name: rl, portAddress: 10.0.1.254, networkAddress: 10.0.1.0, networkLength: 24, link: left-r}
        - {name: rr, portAddress: 10.0.2.254, networkAddress: 10.0.2.0, networkLength: 24, link: right-r}
      routes:
        - {dstNetworkAddr: 10.0.1.0, dstNetworkLength: 24, nextHopPort: rl, weight: 100}
        - {dstNetworkAddr: 10.0.2.0, dstNetworkLength: 24, nextHopPort: rr, weight: 100}
bindings:
  - {port: l1, host: h1, interface: vm1, ip: 10.0.1.1/24, gw: 10.0.1.254}
  - {port: l2, host: h2, interface: vm3, ip: 10.0.1.3/24, gw: 10.0.1.254}
  - {port: r1, host: h2, interface: vm2, ip: 10.0.2.1/24, gw: 10.0.2.254}
"""


def sandbox(*args: str) -> Result:
    return CliRunner().invoke(app, ["sandbox", "run", *args], catch_exceptions=False)


def scenario(tmp_path: Path, traffic: str, base: str = ROUTED) -> str:
    path = tmp_path / "scenario.yaml"
    path.write_text(base + textwrap.dedent(traffic))
    return str(path)


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"two-subnets.yaml", "nat.yaml", "l2.yaml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_passes(example: Path) -> None:
    result = sandbox(str(example))
    assert result.exit_code == 0, result.output + result.stderr
    assert result.output.splitlines()[-1].endswith(" passed, 0 failed")


def test_json_has_a_step_ok_and_captured_per_step(tmp_path: Path) -> None:
    result = sandbox(scenario(tmp_path, """\
        traffic:
          - send: {from: vm1, packet: "ip_dst=10.0.2.1,ip_proto=udp,tp_dst=9"}
            expect: [{at: vm2, packet: "ip_src=10.0.1.1,ip_ttl=63,tp_dst=9"}]
            expect_none_at: [vm3]
          - do: {wait: 2}
        """), "--json")
    assert result.exit_code == 0, result.output + result.stderr
    send, wait = json.loads(result.output)
    assert (send["step"], send["ok"], wait["step"], wait["ok"]) == (1, True, 2, True)
    [datagram] = [p for p in send["captured"]["vm2"] if p["eth_type"] == "ipv4"]
    assert (datagram["ip_src"], datagram["ip_dst"], datagram["ip_ttl"], datagram["tp_dst"]) == (
        "10.0.1.1", "10.0.2.1", 63, 9)
    assert [c["ok"] for c in send["checks"]] == [True, True]
    assert wait["captured"] == {}


def test_a_failing_expectation_fails_the_run(tmp_path: Path) -> None:
    result = sandbox(scenario(tmp_path, """\
        traffic:
          - send: {from: vm1, packet: "ip_dst=10.0.2.1,ip_proto=udp,tp_dst=9"}
            expect: [{at: vm2, packet: "ip_ttl=64"}]
          - send: {from: vm1, packet: "ip_dst=10.0.1.3,ip_proto=udp,tp_dst=9"}
            expect_none_at: [vm3]
          - send: {from: vm1, packet: "ip_dst=10.0.1.3,ip_proto=udp,tp_dst=9"}
            expect: [{at: vm2, packet: "tp_dst=9"}]
        """))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines if line[:4] in ("PASS", "FAIL")] == ["FAIL", "FAIL", "FAIL"]
    text = result.output
    assert "FAIL at vm2: ip_ttl=64: no packet matched; the closest has ip_ttl=63" in text
    assert "FAIL nothing at vm3: it received udp 10.0.1.1:10000 > 10.0.1.3:9" in text
    assert "FAIL at vm2: tp_dst=9: it received nothing" in text
    assert lines[-1] == "3 steps: 0 passed, 3 failed"


def test_a_failing_api_step_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    result = sandbox(scenario(tmp_path, """\
        traffic:
          - do: {api: DELETE, path: "/chains/7d1c0b38-1111-4d5b-9b0a-00000000000a"}
          - do: {api: GET, path: "/bridges/{left}"}
        """), "--json")
    assert result.exit_code == 1
    refused, read = json.loads(result.output)
    assert not refused["ok"] and refused["captured"]["status"] == 404 and "error" in refused
    assert read["ok"] and read["captured"]["response"]["name"] == "left"


def test_a_vm_whose_gateway_does_not_answer_cannot_send(tmp_path: Path) -> None:
    result = sandbox(scenario(tmp_path, """\
        traffic:
          - do: {unbind: l1}
          - send: {from: vm1, packet: "ip_dst=10.0.2.1"}
        """))
    assert result.exit_code == 1
    assert "error: vm1 has no route to 10.0.2.1 or its next hop did not answer ARP" in result.output


def test_a_step_that_cannot_be_done_fails(tmp_path: Path) -> None:
    result = sandbox(scenario(tmp_path, """\
        traffic:
          - do: {unbind: left-r}
        """))
    assert result.exit_code == 1
    assert "error: " in result.output and "traffic[0].do: port left-r is not bound" in result.output


def test_a_bad_file_says_where(tmp_path: Path) -> None:
    path = scenario(tmp_path, "topology:\n  chains: [{name: c1}]\n", base="hosts: [{name: h1, tunnel_ip: 10.0.0.8}]\n"
                    "bindings: [{port: nope, host: h1, interface: vm1}]\n")
    result = sandbox(path)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"error: {path}:2: bindings[0].port: unknown name 'nope': no port is called that\n"


def test_a_member_the_api_does_not_have_is_a_bad_file(tmp_path: Path) -> None:
    typo = ROUTED.replace("{name: right, ports:", "{name: right, inboundFiltreId: x, ports:")
    path = scenario(tmp_path, "", base=typo)
    result = sandbox(path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}:6: topology.bridges[1].inboundFiltreId: a bridge has no member "
                                    "'inboundFiltreId'; the API's bridge has: id, name, tenantId")


def test_a_value_the_api_refuses_is_a_bad_file(tmp_path: Path) -> None:
    path = scenario(tmp_path, "", base=ROUTED.replace("portAddress: 10.0.2.254", "portAddress: 10.0.2.999"))
    result = sandbox(path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}:11: topology.routers[0].ports[1]: the API refused to create the "
                                    "port: portAddress: ")


def test_yaml_errors_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("hosts: [{name: h1\n")
    result = sandbox(str(path))
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {path}:2: YAML error: ")
    result = sandbox(str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1 and "absent.yaml: cannot read the file" in result.stderr
