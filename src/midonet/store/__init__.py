"""The store: topology objects, per-owner state keys and replicated state tables.

    base        -- the `Store` protocol, transaction ops, watch events, `StateTable` (the contract)
    integrity   -- applies the bindings table to a batch of ops: the plan every backend commits atomically
    memory      -- the embedded backend (in-process, persisted to a file; the all-in-one's default)
    journal     -- the embedded backend's files: snapshot + fsync'ed append-only log, crash-safe
    delivery    -- the ordered watch-delivery thread and `Subscription` every backend uses
    zookeeper   -- the ZooKeeper backend (kazoo): multi-op transactions, ephemeral state, watches
    factory     -- `open_store(url)`: "memory[:DIR]" or "zookeeper://HOST:PORT[,HOST:PORT...][/ROOT]"

May import: `midonet.topology`. Every backend passes the same conformance suite (tests/contract/).
"""
