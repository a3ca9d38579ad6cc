"""The storage folder as a repository: its layout, its lock, history, ledgers, reads and blobs."""
