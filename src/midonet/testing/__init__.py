"""The test kit we ship: throwaway servers, fakes and the conformance suites every backend must pass.

    zookeeper -- `ZooKeeperServer`: a real standalone ZooKeeper on a free loopback port, stopped by PID
"""
