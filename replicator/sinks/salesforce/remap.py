"""References in source rows pointed at the records' Ids in the target org.

Why batch by batch: a batch's reference values are looked up in the id map in one query, then
substituted column-wise, so remapping costs one lookup per batch and never a dict of the whole
object. Values the map does not know stay as they are: they name records that exist in the target
under the same Id (undeleted, untouched, or the same org).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from replicator.sinks.salesforce.model import IdMap, Reference


def remap(batch: pa.RecordBatch, references: tuple[Reference, ...], id_map: IdMap) -> pa.RecordBatch:
    """`batch` with every reference column's known source Ids replaced by target Ids."""
    present = [r.field for r in references if r.field in batch.schema.names]
    if not present:
        return batch
    wanted = set()
    for name in present:
        wanted.update(v for v in batch.column(name).to_pylist() if v)
    known = id_map.lookup(sorted(wanted))
    if not known:
        return batch
    keys = pa.array(list(known), pa.string())
    values = pa.array(list(known.values()), pa.string())
    columns = list(batch.columns)
    for name in present:
        at = batch.schema.get_field_index(name)
        column = batch.column(at).cast(pa.string())
        index = pc.index_in(column, value_set=keys)
        columns[at] = pc.if_else(pc.is_valid(index), pc.take(values, index), column)
    schema = pa.schema([f.with_type(pa.string()) if f.name in present else f for f in batch.schema])
    return pa.RecordBatch.from_arrays(columns, schema=schema)
