"""The backup run's files step: bodies of the changed records into the blob store, between the
record extract and the apply (the download itself is replicator/sources/files.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from replicator.progress import Progress
from replicator.salesforce.catalog import ObjectPlan
from replicator.salesforce.client import OrgClient
from replicator.store.repository import Repository
from replicator.store.snapshot import SnapshotStore

log = logging.getLogger("replicator.backup.run")


def fetch_bodies(client: OrgClient, repository: Repository, store: SnapshotStore, plans: list[ObjectPlan],
                 sections: list[Any], staging: Path, progress: Progress) -> bool:
    """File bodies of the changed records into the blob store; True when the API cap stopped it.

    An object with a body that could not be fetched gets a `failed` section, so apply leaves it
    out of this run entirely. That is what makes the next run retry: the store's cursor is the
    largest committed cursor value, so applying the object's other records would move it past
    the failed ones (a record whose download failed has no later change to bring it back), and
    dropping only the failed rows could not hold the cursor below them. Left out whole, the
    object's cursor and probe watermark stay where they were and the next run re-reads the
    same window; its already stored bodies cost no new blob (content addressing).
    """
    from replicator.sources.files import fetch_files
    with_blobs = [p for p in plans if p.blob_field]
    if not with_blobs:
        return False
    progress.phase("files", len(with_blobs))
    stats = fetch_files(client, repository.blobs(), staging, with_blobs, store.reads.current_versions,
                        repository.key)
    for s in sections:
        problem = stats[s.object].problem() if s.object in stats else None
        if problem:
            log.warning("%s: %s", s.object, problem)
            s.status, s.message = "failed", problem
    return any(st.stopped for st in stats.values())
