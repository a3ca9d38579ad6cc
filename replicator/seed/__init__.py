"""Sandbox seeding: templates, subset closure, automations and masking."""
