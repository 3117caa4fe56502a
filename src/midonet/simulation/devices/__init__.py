"""The simulated devices, one per module (spec 3.2-3.5): `port`, `bridge`, `router`, `chain`.

Each exposes what the pipeline calls (`simulation.pipeline` gives the order): `port.ingress` / `port.egress`,
`bridge.process`, `router.process`, `chain.apply_filters`. Devices return a verdict or a continuation
(`results.ToPort`, `results.Fork`) and never write datapath actions: the driver derives the flow's rewrites
from the difference between the final and the original match.

Later engineers add `nat`, `load_balancer`, `mirror` and `dhcp` here, at the seams the pipeline marks.
"""
