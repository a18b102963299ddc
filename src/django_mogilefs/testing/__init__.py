"""Native (no Docker) stack pieces: Perlbal storage nodes and process management.

Used by ``make dev`` (native stack) and by the test fixtures.
"""

from .procgroup import ProcessGroup
from .storagenode import StorageNode, free_port, port_is_free, start_nodes
from .usage import usage_text, write_usage

__all__ = [
    "ProcessGroup",
    "StorageNode",
    "free_port",
    "port_is_free",
    "start_nodes",
    "usage_text",
    "write_usage",
]
