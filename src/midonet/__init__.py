"""MidoNet in Python: a distributed network-virtualization platform.

See ARCHITECTURE.md (shared) for the processes and the package layering.
"""

__version__ = "0.1.0"
