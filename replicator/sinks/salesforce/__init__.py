"""THE loader into an org. Restore, replicate and seeding all hand it a `LoadPlan` (model.py) and
get per-record outcomes back; how records travel (SOAP undelete, sObject Collections, composite
graph, Bulk 2.0), how references are remapped to new Ids and how cycles are broken live here and
nowhere else, so every job that writes to an org obeys the same rules."""
