"""The emulator as its own product: no import of Replicator."""
