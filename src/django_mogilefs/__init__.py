"""MogileFS for Django: a robust tracker client and a ``STORAGES`` backend.

Public entry points:

* :class:`django_mogilefs.client.MogileFSClient` -- file operations on one domain.
* :class:`django_mogilefs.cluster.ClusterAdmin` -- domains, classes, hosts, devices.
* :class:`django_mogilefs.storage.MogileFSStorage` -- the Django storage backend.
* ``django_mogilefs.urls`` -- the serve view (Perlbal reproxy or streaming).
"""

__version__ = "0.1.0"
