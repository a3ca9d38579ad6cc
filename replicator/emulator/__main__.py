"""`python -m replicator.emulator serve ...`: the emulator without the `replicator` entry point."""

from .cli import emulator

if __name__ == "__main__":
    emulator(prog_name="python -m replicator.emulator")
