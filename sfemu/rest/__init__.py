"""The REST API under `/services/data`: one module per resource family, gathered in `routes`."""
