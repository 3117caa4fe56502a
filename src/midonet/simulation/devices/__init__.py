"""The simulated devices, one per module (spec 3.2-3.11): `port`, `bridge`, `router`, `chain`, `nat`,
`load_balancer`, `mirror`, `dhcp`.

Each exposes what the pipeline calls (`simulation.pipeline` gives the order): `port.ingress` / `port.egress`,
`bridge.process`, `router.process`, `chain.apply_filters` (NAT rules: `nat.apply_rule`), `load_balancer.inbound` /
`outbound`, `mirror.mirror_in` / `mirror_out`, `dhcp.intercept`.
Devices return a verdict or a continuation (`results.ToPort`, `results.Fork`, `results.Continue`) and never write
datapath actions: the driver derives the flow's rewrites from the difference between the final and the original
match.
"""
