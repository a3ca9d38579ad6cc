"""SQL in four dialects: one class per dialect (registry), tables, literals and whole scripts."""
