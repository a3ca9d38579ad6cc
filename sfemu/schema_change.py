"""Adding a custom field to a running org, as an admin does in Setup while clients keep working.

Backups must notice schema changes between runs; testing that needs an org whose describe changes
without a restart. Salesforce fills a new field's default into existing records without touching
their audit fields (a new checkbox reads `false` on every old record, SystemModstamp unchanged), so
only a client that re-reads the field after seeing the describe change gets those values right.
The field lasts until the org is reset or restarted (a reset reloads the schema files).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sfemu.dml import sql as q
from sfemu.schema import COMPOUND_TYPES, Field, SchemaError, build_fields
from sfemu.store import quote

if TYPE_CHECKING:
    from sfemu.org import EmulatedOrg

# Settings a new field may have: plain value fields only (no lookups, formulas or roll-ups, which
# would need relationships and computed columns that the running query compiler already knows).
ALLOWED_KEYS = {"type", "label", "length", "precision", "scale", "default", "values", "restricted",
                "required", "unique", "external_id", "help"}
REFUSED_TYPES = COMPOUND_TYPES | {"reference", "id"}


def add_field(org: EmulatedOrg, object_name: str, name: str, spec: dict[str, Any]) -> Field:
    """Add custom field `name` (settings as in a schema file) to an object of the running org.

    Existing records get the default value (NULL without one) and keep their audit fields; records
    created later get it too. Describes change at once: the schema's Last-Modified moves to now.
    Raises SchemaError with a sentence when the request cannot be honoured.
    """
    obj = org.schema.get(object_name)
    if obj is None or not obj.key_prefix:
        raise SchemaError(f"unknown object: {object_name}")
    if not name.endswith("__c") or not name[:-3].replace("_", "").isalnum() or not name[0].isalpha():
        raise SchemaError(f"{name}: a custom field name is letters, digits and underscores ending in __c")
    if obj.field(name) is not None:
        raise SchemaError(f"{obj.name}.{name} already exists")
    unknown = sorted(set(spec) - ALLOWED_KEYS)
    if unknown:
        raise SchemaError(f"{obj.name}.{name}: settings not supported for a new field: {unknown}")
    if spec.get("type", "string") in REFUSED_TYPES:
        raise SchemaError(f"{obj.name}.{name}: fields of type {spec['type']} cannot be added at run time")
    (f,) = build_fields(obj.name, name, spec)
    store = org.store
    default = ""
    if f.default_value is not None:
        text = str(f.default_value).lower() if isinstance(f.default_value, bool) else str(f.default_value)
        default = f" DEFAULT CAST({q.lit(text)} AS {f.sql_type})"
    with store.write_lock:
        # ADD COLUMN ... DEFAULT fills the existing rows with the default and nothing else: no audit
        # field moves, as on Salesforce; the data generator and churn, which leave the column out,
        # get the default for their new records too.
        store.cursor().execute(
            f"ALTER TABLE {store.table(obj)} ADD COLUMN {quote(f.name)} {f.sql_type}{default}")
        obj.fields[f.name.lower()] = f
        org.extensions["fields_added"] = True  # a reset reloads the schema files
        now = org.clock.now().astimezone(UTC)
        org.schema.last_modified = max(now, _next_second(org.schema.last_modified))
    return f


def _next_second(moment: datetime) -> datetime:
    """A Last-Modified strictly after `moment` at HTTP-date (whole second) precision."""
    return moment.replace(microsecond=0) + timedelta(seconds=1)
