"""The agent's statistics record and its Prometheus text export."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from midonet.agent.flow_table import FlowTableStatistics
from midonet.agent.metrics import AgentDrop, AgentStatistics, Counters, prometheus_text, registry_for, statistics_of
from midonet.datapath.base import DatapathStatistics, DropReason


def _stats() -> AgentStatistics:
    counters = Counters()
    counters.add("upcalls", 7)
    counters.add("simulations", 9)
    counters.drop(AgentDrop.MALFORMED)
    counters.drop(AgentDrop.DROP, 2)
    return statistics_of(counters, 1, 2, FlowTableStatistics(flows=3, installed=5, removed=2, invalidated=1),
                         DatapathStatistics.of(10, 7, 7, {DropReason.LINK_DOWN: 4}))


def test_statistics_count_drops_by_reason() -> None:
    s = _stats()
    assert (s.upcalls, s.simulations, s.waiting, s.bound_ports) == (7, 9, 1, 2)
    assert s.dropped(AgentDrop.DROP) == 2 and s.dropped() == 3
    assert (s.flows_installed, s.flows_removed, s.flows_invalidated) == (5, 2, 1)


def test_prometheus_text_parses_and_carries_the_counters() -> None:
    text = prometheus_text(registry_for(_stats, "host-1"))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    host = (("host", "host-1"),)
    assert samples[("midonet_agent_upcalls_total", host)] == 7
    assert samples[("midonet_agent_flows", host)] == 3
    assert samples[("midonet_agent_drops_total", (("host", "host-1"), ("reason", "malformed")))] == 1
    assert samples[("midonet_agent_drops_total", (("host", "host-1"), ("reason", "gave_up")))] == 0
    assert samples[("midonet_datapath_drops_total", (("host", "host-1"), ("reason", "link_down")))] == 4
    assert samples[("midonet_datapath_hits_total", host)] == 10
