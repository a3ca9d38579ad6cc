"""Replicator: self-hosted Salesforce backup, replication, restore and sandbox seeding."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("replicator")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
