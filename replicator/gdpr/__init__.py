"""GDPR requests against the backup: search, forget, rectify, and the request ledger.

search (gdpr.search) finds a person by email, phone, name or address across every version and
export; forget and rectify (gdpr.erase) change every version, file body and export the ledger
lists, with the store rewritten atomically (store.rewrite) and forgotten subjects remembered only as
keyed hashes (store.forgotten), which backups, restores and seeds consult; gdpr.ledger lists the
requests.
"""
