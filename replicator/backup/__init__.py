"""The backup jobs: one run from a live org into the snapshot store (`run.run_backup`), and the plan
such a run would follow (`catalog.catalog`)."""
