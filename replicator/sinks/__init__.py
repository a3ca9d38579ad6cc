"""Sinks: where exported records go. SQL scripts per dialect (sql/), CSV files (csv), external
databases per endpoint kind (endpoints/). They take Arrow batches and column types and read nothing
of sources/ or the store's layout; the export job feeds them."""
