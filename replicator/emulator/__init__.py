"""The Salesforce org emulator. Imports nothing from the rest of `replicator`."""
