"""Sources: where records come from (a live org, the snapshot store)."""
