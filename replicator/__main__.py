"""`python -m replicator`: the same CLI as the `replicator` console script (useful without the
venv's bin folder on PATH, and in subprocess tests)."""

from replicator.cli import main

main()
