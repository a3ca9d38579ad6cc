"""The backup job: one run from a live org into the snapshot store."""
