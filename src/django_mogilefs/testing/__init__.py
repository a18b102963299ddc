"""A MogileFS cluster for test suites: a fake 2.73 tracker and three storage nodes.

With pytest (the plugin is registered on install)::

    def test_save(mogilefs_cluster):
        storage = MogileFSStorage(trackers=mogilefs_cluster.trackers,
                                  domain=mogilefs_cluster.domain)

With unittest or Django's ``TestCase``::

    with mogilefs_cluster(classes={"photo": 2}) as cluster:
        ...

The storage nodes are real Perlbal where Debian's ``perlbal`` is installed, else
written in Python (:class:`PythonStorageNode`); the tracker is
:class:`~django_mogilefs.testing.faketracker.FakeTracker`, also a command
(``mogilefs-faketracker`` or ``python -m django_mogilefs.testing.faketracker``).
"""

from .cluster import (
    CLASSES,
    ClusterError,
    MogileCluster,
    check_real_cluster,
    mogilefs_cluster,
    start_fake_cluster,
)
from .procgroup import ProcessGroup
from .pynode import PythonStorageNode
from .storagenode import StorageNode, free_port, port_is_free, start_nodes

__all__ = [
    "CLASSES",
    "ClusterError",
    "MogileCluster",
    "ProcessGroup",
    "PythonStorageNode",
    "StorageNode",
    "check_real_cluster",
    "free_port",
    "mogilefs_cluster",
    "port_is_free",
    "start_fake_cluster",
    "start_nodes",
]
