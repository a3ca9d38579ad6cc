"""Endpoint loaders: a backup's tables into an external database, one loader per endpoint kind."""
