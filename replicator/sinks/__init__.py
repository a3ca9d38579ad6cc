"""Sinks: where records go (the snapshot store, blobs, SQL exports, an org)."""
