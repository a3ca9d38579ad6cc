"""Salesforce infrastructure: the one org client, composite batching, the catalog and SOQL helpers."""
