"""A realistic org at any scale, deterministic from a seed.

Backup tests need orgs that look like real ones (names, addresses, references between objects,
record types, files, a recycle bin) at sizes from a handful of rows to millions, and the same org
every time for a given seed. Everything here is driven by the schema: each stored field gets values
from its type, name and picklist, with a few per-object rules for what the schema cannot say
(opportunity stages close opportunities, line items copy their price book entry, ...).

Speed: faker builds small pools once per seed; rows are numpy indices into those pools, combined
with Arrow compute and appended in Arrow batches, so a million rows take seconds, never a Python
loop per record (file bodies aside: they are few and small).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sfemu.describe import record_type_id, record_type_label
from sfemu.ids import id_matrix, id_strings, make_id, make_ids
from sfemu.recyclebin import soft_delete
from sfemu.schema import Field, SObject
from sfemu.store import DELETED_AT, Store, quote

BATCH_ROWS = 65_536
HISTORY_DAYS = 730
RECYCLE_OBJECTS = ("Account", "Contact", "Case")
POOL_SIZE = 2000

# Share of `scale` per object; objects not listed get DEFAULT_RATIO (custom) or a few rows.
RATIOS = {
    "Account": 0.10, "Contact": 0.20, "Lead": 0.08, "Opportunity": 0.12, "OpportunityLineItem": 0.06,
    "Case": 0.08, "CaseComment": 0.03, "Task": 0.20, "Event": 0.05, "Campaign": 0.002,
    "CampaignMember": 0.02, "Note": 0.01, "Attachment": 0.004, "Document": 0.0005,
    "ContentDocument": 0.004, "ContentVersion": 0.004, "ContentDocumentLink": 0.006,
    "FeedItem": 0.02, "FeedComment": 0.01, "Invoice__c": 0.02, "Invoice_Line__c": 0.05,
    "Project__c": 0.005, "Office__c": 0.0005, "Product2": 0.0005,
}
DEFAULT_CUSTOM_RATIO = 0.002
MIN_ROWS = 3
FIXED = {"Organization": 1, "Profile": 6, "UserRole": 8, "Pricebook2": 3, "Region__c": 8}
FILE_OBJECTS = ("Attachment", "Document", "ContentVersion")

# Fill rate of optional lookups that the generic 70% would get wrong.
REF_FILL = {
    ("Account", "ParentId"): 0.12, ("Contact", "AccountId"): 0.95, ("Opportunity", "AccountId"): 0.98,
    ("Case", "AccountId"): 0.9, ("Case", "ContactId"): 0.8, ("User", "ManagerId"): 0.6,
    ("Contact", "ReportsToId"): 0.1, ("Opportunity", "CampaignId"): 0.2,
    ("OpportunityLineItem", "PricebookEntryId"): 1.0, ("OpportunityLineItem", "Product2Id"): 1.0,
}
SELF_ROOTS = 0.2  # self lookups point into the first 20% of rows, which have no parent: shallow trees


def skipped_by_backup(name: str) -> bool:
    """Objects a backup must skip (history, sharing, login IPs, knowledge versions, external)."""
    return (name.endswith(("History", "Share", "__kav", "__x")) or name == "LoginIp")


# --- vectorised ids -------------------------------------------------------------------------------

def id_array(m: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Arrow strings from an id matrix, NULL where `valid` is False."""
    arr = id_strings(m)
    return arr if valid is None else pc.if_else(pa.array(valid), arr, pa.scalar(None, pa.string()))


def ids_to_matrix(ids: list[str] | pa.Array) -> np.ndarray:
    """The inverse of id_array for 18-character ids read back from the store."""
    text = "".join(ids.to_pylist() if isinstance(ids, pa.Array) else ids)
    return np.frombuffer(text.encode(), np.uint8).reshape(-1, 18)


# --- pools ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pools:
    """Realistic values built once per seed with faker; rows index into them."""

    first: pa.Array
    last: pa.Array
    company: pa.Array
    domain: pa.Array
    street: pa.Array
    city: pa.Array
    state: pa.Array
    postal: pa.Array
    country: pa.Array
    lat: np.ndarray
    lon: np.ndarray
    phone: pa.Array
    job: pa.Array
    word: pa.Array
    sentence: pa.Array
    paragraph: pa.Array
    product: pa.Array


@cache
def pools(seed: int) -> Pools:
    from faker import Faker

    fk = Faker("en_US")
    fk.seed_instance(seed)
    r = range(POOL_SIZE)

    def arr(fn: Callable[[], str]) -> pa.Array:
        return pa.array([fn() for _ in r], pa.string())

    company = [fk.company() for _ in r]
    domain = [re.sub(r"[^a-z0-9]+", "", c.split()[0].lower()) + "." + fk.tld() for c in company]
    words = sorted({w for _ in r for w in fk.words(3)})
    return Pools(
        first=arr(fk.first_name), last=arr(fk.last_name), company=pa.array(company), domain=pa.array(domain),
        street=arr(fk.street_address), city=arr(fk.city), state=arr(fk.state_abbr), postal=arr(fk.postcode),
        country=pa.array(["United States"] * (POOL_SIZE * 4 // 5)
                         + [fk.country() for _ in range(POOL_SIZE // 5)]),
        lat=np.array([float(fk.latitude()) for _ in r]), lon=np.array([float(fk.longitude()) for _ in r]),
        phone=pa.array([f"({fk.numerify('###')}) {fk.numerify('###')}-{fk.numerify('####')}" for _ in r]),
        job=arr(fk.job), word=pa.array(words), sentence=arr(lambda: fk.sentence(nb_words=6)),
        paragraph=arr(lambda: fk.paragraph(nb_sentences=3)),
        product=pa.array([f"{fk.word().title()} {fk.random_element(['Pro', 'Max', 'Lite', 'Plus', 'Suite'])}"
                          for _ in r]),
    )


def _pick(pool: pa.Array, rng: np.random.Generator, n: int) -> pa.Array:
    return pool.take(pa.array(rng.integers(0, len(pool), n)))


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _counter_text(counters: np.ndarray, width: int = 8) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(counters), pa.string()), width, "0")


def _slug(arr: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_lower(arr), r"[^a-z0-9]+", "")


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """An independent, reproducible stream per (seed, object, batch, purpose)."""
    words = [seed & 0xFFFFFFFF] + [zlib.crc32(str(p).encode()) for p in parts]
    return np.random.default_rng(words)


# --- parent ids -----------------------------------------------------------------------------------

class IdSource:
    """Where references find their targets: counter ranges during generation."""

    def __init__(self, store: Store, ranges: dict[str, tuple[int, int]]) -> None:
        self.store = store
        self.ranges = ranges  # object name -> (first counter, count)

    def count(self, target: str) -> int:
        return self.ranges.get(target, (0, 0))[1]

    def pick(self, target: str, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.nth(target, rng.integers(0, self.ranges[target][1], n))

    def nth(self, target: str, index: np.ndarray) -> np.ndarray:
        obj = self.store.schema.get(target)
        return id_matrix(obj.key_prefix, self.ranges[target][0] + np.asarray(index))

    def self_parents(self, b: Batch, fill: float) -> pa.Array:
        """Self lookups point into the first rows, which have none themselves: trees one level deep."""
        roots = max(1, int(self.count(b.obj.name) * SELF_ROOTS))
        valid = (b.index >= roots) & (b.rng.random(b.n) < fill)
        return id_array(self.nth(b.obj.name, b.rng.integers(0, roots, b.n)), valid)


# --- the generator --------------------------------------------------------------------------------

@dataclass
class Batch:
    """One batch of rows being built: positions within the object, counters and audit times."""

    obj: SObject
    index: np.ndarray  # position of each row among the object's rows (self lookups, alignments)
    counters: np.ndarray
    created: np.ndarray  # epoch milliseconds
    modified: np.ndarray
    stamp: np.ndarray
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return len(self.index)


class Generator:
    """Builds Arrow batches of realistic rows for any object of the schema."""

    def __init__(self, store: Store, source: IdSource, *, seed: int, start: datetime, files: bool,
                 sandbox: bool = False, pool_seed: int | None = None) -> None:
        self.store = store
        self.schema = store.schema
        self.source = source
        self.seed = seed
        self.start = start
        self.files = files
        self.sandbox = sandbox
        self.pools = pools(seed if pool_seed is None else pool_seed)  # pools cost ~1 s: churn reuses them
        self._record_types: dict[str, list[str]] = {}

    def record_type_ids(self, obj: SObject) -> list[str]:
        """The object's own record types (RecordType rows are written before the objects using them)."""
        if obj.name not in self._record_types:
            rt = self.schema.get("RecordType")
            self._record_types[obj.name] = [] if rt is None else [r[0] for r in self.store.cursor().execute(
                f'SELECT "Id" FROM {self.store.table(rt)} WHERE "SobjectType" = ? '
                f'AND {quote(DELETED_AT)} IS NULL ORDER BY "Id"', [obj.name]).fetchall()]
        return self._record_types[obj.name]

    def table(self, b: Batch) -> pa.Table:
        cols: dict[str, pa.Array] = {}
        addr: dict[str, np.ndarray] = {}
        for f in b.obj.stored_fields:
            value = self.value(b, f, addr)
            if value is not None:
                cols[f.name] = value
        self._people(b, cols)
        rule = RULES.get(b.obj.name)
        if rule:
            rule(self, b, cols)
        return pa.table(cols)

    # one column ---------------------------------------------------------------------------------

    def value(self, b: Batch, f: Field, addr: dict[str, np.ndarray]) -> pa.Array | None:
        name, t, n, rng = f.name, f.type, b.n, b.rng
        if name == "Id":
            return make_ids(b.obj.key_prefix, int(b.counters[0]) if n else 0, n)  # counters: one range
        if name == "IsDeleted":
            return pa.array(np.zeros(n, bool))
        if f.system and t == "datetime":
            ms = {"CreatedDate": b.created, "LastModifiedDate": b.modified}.get(name, b.stamp)
            return pa.array(ms.astype("datetime64[ms]"))
        if f.rollup is not None:
            return None  # computed from the children once they exist
        if t == "reference":
            return self.reference(b, f)
        if f.compound_key or name in ("Street", "City", "State", "PostalCode", "Country"):
            return self.address(b, f, addr)
        if t in ("picklist", "combobox"):
            values = _values(f)
            return _pick(pa.array(values), rng, n) if values else None
        if t == "multipicklist":
            return self.multipicklist(f, rng, n)
        if t == "boolean":
            p = 0.9 if f.default_value is True or name == "IsActive" else 0.2
            return pa.array(rng.random(n) < p)
        if t in ("int", "long", "double", "currency", "percent"):
            return self.number(b, f)
        if t in ("date", "datetime", "time"):
            return self.moment(b, f)
        if t == "base64":
            return None  # only file objects have bodies (RULES)
        return self.text(b, f)

    def reference(self, b: Batch, f: Field) -> pa.Array | None:
        n, rng = b.n, b.rng
        if not f.createable and not f.system:
            return None  # e.g. MasterRecordId: set only by merges
        if f.name == "RecordTypeId":
            rts = self.record_type_ids(b.obj)
            return pa.array(np.array(rts)[rng.integers(0, len(rts), n)]) if rts else None
        targets = [self.schema.get(t).name for t in f.reference_to]
        targets = [t for t in targets if self.source.count(t)]
        if "User" in targets and f.name in ("OwnerId", "CreatedById", "LastModifiedById"):
            targets = ["User"]
        if not targets:
            return None
        if targets == [b.obj.name]:
            return self.source.self_parents(b, REF_FILL.get((b.obj.name, f.name), 0.3))
        if f.required or f.master_detail or not f.nillable or f.system:
            fill = 1.0
        else:
            fill = REF_FILL.get((b.obj.name, f.name), 0.7)
        weights = np.array([self.source.count(t) for t in targets], float)
        kind = (rng.choice(len(targets), n, p=weights / weights.sum()) if len(targets) > 1
                else np.zeros(n, int))
        m = np.empty((n, 18), np.uint8)
        for k, target in enumerate(targets):
            rows = kind == k
            m[rows] = self.source.pick(target, rng, int(rows.sum()))
        return id_array(m, rng.random(n) < fill if fill < 1 else None)

    def address(self, b: Batch, f: Field, addr: dict[str, np.ndarray]) -> pa.Array | None:
        p = self.pools
        group = f.compound_field_name or ""
        if group not in addr:
            addr[group] = b.rng.integers(0, POOL_SIZE, b.n)
        idx = pa.array(addr[group])
        key = f.compound_key or f.name[0].lower() + f.name[1:]
        if key in ("latitude", "longitude"):
            return pa.array((p.lat if key == "latitude" else p.lon)[addr[group]])
        pool = {"street": p.street, "city": p.city, "state": p.state, "postalCode": p.postal,
                "country": p.country}.get(key)
        return None if pool is None else _fit(pool.take(idx), f)

    def multipicklist(self, f: Field, rng: np.random.Generator, n: int) -> pa.Array | None:
        values = _values(f)
        if not values:
            return None
        combos = values + [f"{a};{b}" for i, a in enumerate(values) for b in values[i + 1:]]
        return _pick(pa.array(combos), rng, n)

    def number(self, b: Batch, f: Field) -> pa.Array:
        rng, n, name = b.rng, b.n, f.name.lower()
        if f.type == "percent":
            v = rng.integers(0, 101, n).astype(float)
        elif f.type == "currency" or "amount" in name or "price" in name or "revenue" in name:
            v = np.round(rng.lognormal(9.5 if "revenue" not in name else 15, 1.2, n), f.scale)
        elif "quantity" in name:
            v = rng.integers(1, 21, n).astype(float)
        elif "employees" in name or f.type in ("int", "long"):
            v = np.floor(rng.lognormal(3.5, 1.5, n))
        else:
            v = np.round(rng.random(n) * 1000, f.scale or 2)
        if f.precision:
            v = np.minimum(v, 10.0 ** (f.precision - f.scale) - 1)
        if f.unique or f.external_id:
            v = b.counters.astype(float)
        if f.type in ("int", "long"):
            return pa.array(v.astype(np.int32 if f.type == "int" else np.int64))
        return pa.array(v)

    def moment(self, b: Batch, f: Field) -> pa.Array:
        rng, n = b.rng, b.n
        if f.type == "time":
            return pa.array(rng.integers(0, 86_400, n) * 1_000_000, pa.time64("us"))
        name = f.name.lower()
        if "birth" in name:
            days = np.datetime64("1950-01-01") + rng.integers(0, 50 * 365, n).astype("timedelta64[D]")
            return pa.array(days)
        ahead = rng.integers(-30 * 86_400_000, 180 * 86_400_000, n)  # due, close and activity dates
        ms = (b.created + np.abs(ahead) if "closed" in name or "converted" in name else b.created + ahead)
        if f.type == "date":
            return pa.array(ms.astype("datetime64[ms]").astype("datetime64[D]"))
        return pa.array(np.minimum(ms, b.modified).astype("datetime64[ms]"))  # no future activity

    def text(self, b: Batch, f: Field) -> pa.Array:
        p, rng, n, name = self.pools, b.rng, b.n, f.name.lower()
        if f.auto_number:
            return _counter_text(b.counters)
        if f.unique or f.external_id:
            stem = re.sub(r"[^A-Z]", "", b.obj.name.upper())[:3] or "EXT"
            if f.type == "email":
                return _join(_slug(_pick(p.first, rng, n)), ".", _counter_text(b.counters), "@example.com")
            return _fit(_join(f"{stem}-", _counter_text(b.counters)), f)
        if f.type == "email":
            return _join(_slug(_pick(p.first, rng, n)), ".", _slug(_pick(p.last, rng, n)), "@",
                         _pick(p.domain, rng, n))
        if f.type == "phone" or "phone" in name or name == "fax":
            return _pick(p.phone, rng, n)
        if f.type == "url" or name == "website":
            return _join("https://www.", _pick(p.domain, rng, n))
        pool = {"firstname": p.first, "lastname": p.last, "company": p.company, "title": p.job,
                "subject": p.sentence}.get(name)
        if pool is None and f.type == "textarea":
            pool = p.paragraph if f.length > 255 else p.sentence
        if pool is None and name == "name" and b.obj.name in ("Account", "Organization"):
            pool = p.company
        if pool is None and name == "name":
            return _fit(_join(_cap(_pick(p.word, rng, n)), " ", _cap(_pick(p.word, rng, n))), f)
        if pool is None:
            pool = p.word
        return _fit(_pick(pool, rng, n), f)

    def _people(self, b: Batch, cols: dict[str, pa.Array]) -> None:
        """Person records: Name = FirstName + ' ' + LastName, emails from the name."""
        if "FirstName" not in cols or "LastName" not in cols:
            return
        first, last = cols["FirstName"], cols["LastName"]
        _set(b.obj, cols, "Name", _join(first, " ", last))
        f = b.obj.field("Email")
        if f and not f.unique and "Email" in cols:
            cols["Email"] = _join(_slug(first), ".", _slug(last), "@", _pick(self.pools.domain, b.rng, b.n))


def _values(f: Field) -> list[str]:
    return [v["value"] if isinstance(v, dict) else str(v) for v in f.picklist_values]


def _cap(arr: pa.Array) -> pa.Array:
    return pc.utf8_capitalize(arr)


def _fit(arr: pa.Array, f: Field) -> pa.Array:
    return pc.utf8_slice_codeunits(arr, 0, f.length) if f.length else arr


def _set(obj: SObject, cols: dict[str, pa.Array], name: str, value: pa.Array | np.ndarray) -> None:
    """Set a column only if the object really has that stored field (the YAML may not declare it)."""
    f = obj.field(name)
    if f is not None and f.stored:
        cols[f.name] = value if isinstance(value, pa.Array) else pa.array(value)


# --- per-object rules (what the schema cannot express) -------------------------------------------

def _organization(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    _set(b.obj, cols, "IsSandbox", np.full(b.n, g.sandbox))
    _set(b.obj, cols, "InstanceName", pa.array(["CS42" if g.sandbox else "NA224"] * b.n))
    _set(b.obj, cols, "OrganizationType", pa.array(["Enterprise Edition"] * b.n))
    _set(b.obj, cols, "TimeZoneSidKey", pa.array(["America/Los_Angeles"] * b.n))
    _set(b.obj, cols, "LanguageLocaleKey", pa.array(["en_US"] * b.n))
    _set(b.obj, cols, "DefaultLocaleSidKey", pa.array(["en_US"] * b.n))


def _record_type(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    all_types = record_types(g.schema)
    rows = [all_types[i] for i in b.index.tolist()]
    developer_names = [re.sub(r"\W+", "_", r[1]).strip("_") for r in rows]
    # Ids and labels must equal what describe's recordTypeInfos report for the same record types.
    ids = [record_type_id(r[0], d) for r, d in zip(rows, developer_names, strict=True)]
    _set(b.obj, cols, "Id", pa.array(ids))
    _set(b.obj, cols, "Name", pa.array([record_type_label(d) for d in developer_names]))
    _set(b.obj, cols, "DeveloperName", pa.array(developer_names))
    _set(b.obj, cols, "SobjectType", pa.array([r[0] for r in rows]))
    _set(b.obj, cols, "IsActive", np.ones(b.n, bool))


def _profile(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    names = ["System Administrator", "Standard User", "Read Only", "Marketing User", "Contract Manager",
             "Solution Manager"]
    _set(b.obj, cols, "Name", pa.array([names[i] if i < len(names) else f"Custom Profile {i}"
                                        for i in b.index]))


def _user_role(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    names = ["CEO", "VP Sales", "VP Marketing", "Sales Manager", "Support Manager", "Sales Rep",
             "Support Agent", "Marketing Specialist"]
    _set(b.obj, cols, "Name", pa.array([names[i] if i < len(names) else f"Role {i}" for i in b.index]))


def _user(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    login = _join(_slug(cols["FirstName"]), ".", _slug(cols["LastName"]), ".", _counter_text(b.counters, 4))
    _set(b.obj, cols, "Username", _join(login, "@acme-corp.example"))
    _set(b.obj, cols, "Email", _join(login, "@acme-corp.example"))
    _set(b.obj, cols, "Alias", pc.utf8_slice_codeunits(login, 0, 8))
    _set(b.obj, cols, "IsActive", (b.index == 0) | (b.rng.random(b.n) < 0.9))
    if g.source.count("Profile"):
        _set(b.obj, cols, "ProfileId", id_array(g.source.nth("Profile", np.minimum(b.index, 1))))


def _pricebook(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    names = ["Standard Price Book", "Partner Price Book", "Enterprise Price Book"]
    _set(b.obj, cols, "Name", pa.array([names[i] if i < 3 else f"Price Book {i}" for i in b.index]))
    _set(b.obj, cols, "IsStandard", b.index == 0)
    _set(b.obj, cols, "IsActive", np.ones(b.n, bool))


def _pricebook_entry(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    products = max(g.source.count("Product2"), 1)
    _set(b.obj, cols, "Product2Id", id_array(g.source.nth("Product2", b.index % products)))
    _set(b.obj, cols, "Pricebook2Id", id_array(g.source.nth("Pricebook2", b.index // products)))
    base = rng_for(g.seed, "Product2", "price").lognormal(6, 1.3, products).round(2)
    _set(b.obj, cols, "UnitPrice", base[b.index % products] * (1 - 0.1 * (b.index // products)))
    _set(b.obj, cols, "IsActive", np.ones(b.n, bool))
    _set(b.obj, cols, "UseStandardPrice", b.index >= products)


def _opportunity(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    stage = cols.get("StageName")
    if stage is not None:
        _set(b.obj, cols, "IsClosed", pc.starts_with(stage, "Closed"))
        _set(b.obj, cols, "IsWon", pc.equal(stage, "Closed Won"))
    if "Name" in cols:
        kind = _pick(pa.array(["New Business", "Renewal", "Upgrade", "Expansion", "Services"]), b.rng, b.n)
        cols["Name"] = _fit(_join(_pick(g.pools.company, b.rng, b.n), " - ", kind), b.obj.field("Name"))
    if g.source.count("Pricebook2"):
        _set(b.obj, cols, "Pricebook2Id", id_array(g.source.nth("Pricebook2", np.zeros(b.n, int))))


def _closed_by_status(done: str) -> Callable[[Generator, Batch, dict[str, pa.Array]], None]:
    def rule(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
        if "Status" in cols:
            _set(b.obj, cols, "IsClosed", pc.equal(cols["Status"], done))
    return rule


def _lead(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    converted = b.rng.random(b.n) < 0.05
    _set(b.obj, cols, "IsConverted", converted)
    for name in ("ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId"):
        f = b.obj.field(name)
        if f and f.reference_to and g.source.count(f.reference_to[0]):
            _set(b.obj, cols, name, id_array(g.source.pick(f.reference_to[0], b.rng, b.n), converted))
    if b.obj.field("ConvertedDate"):
        day = (b.modified.astype("datetime64[ms]")).astype("datetime64[D]")
        _set(b.obj, cols, "ConvertedDate", pc.if_else(pa.array(converted), pa.array(day),
                                                       pa.scalar(None, pa.date32())))


def _campaign_member(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    if "LeadId" in cols and "ContactId" in cols:
        lead = b.rng.random(b.n) < 0.5
        cols["LeadId"] = pc.if_else(pa.array(lead), cols["LeadId"], pa.scalar(None, pa.string()))
        cols["ContactId"] = pc.if_else(pa.array(~lead), cols["ContactId"], pa.scalar(None, pa.string()))


def _event(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    minutes = b.rng.choice([15, 30, 60, 90, 120], b.n)
    begin = b.created + b.rng.integers(0, 30 * 86_400_000, b.n) // 900_000 * 900_000
    _set(b.obj, cols, "DurationInMinutes", minutes.astype(np.int32))
    _set(b.obj, cols, "StartDateTime", begin.astype("datetime64[ms]"))
    _set(b.obj, cols, "EndDateTime", (begin + minutes * 60_000).astype("datetime64[ms]"))
    _set(b.obj, cols, "ActivityDateTime", begin.astype("datetime64[ms]"))
    _set(b.obj, cols, "ActivityDate", begin.astype("datetime64[ms]").astype("datetime64[D]"))


def _content_document_link(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    docs = g.source.count("ContentDocument")
    if docs:
        _set(b.obj, cols, "ContentDocumentId", id_array(g.source.nth("ContentDocument", b.index % docs)))
    f = b.obj.field("LinkedEntityId")
    targets = [t for t in ("Account", "Opportunity") if f and t in f.reference_to and g.source.count(t)]
    if targets:
        m = g.source.pick(targets[0], b.rng, b.n)
        if len(targets) > 1:
            opp = b.rng.random(b.n) < 0.4
            m[opp] = g.source.pick(targets[1], b.rng, int(opp.sum()))
        cols["LinkedEntityId"] = id_array(m)
    _set(b.obj, cols, "ShareType", pa.array(["V"] * b.n))
    _set(b.obj, cols, "Visibility", pa.array(["AllUsers"] * b.n))


def _content_document(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
    if g.source.count("ContentVersion"):
        _set(b.obj, cols, "LatestPublishedVersionId", id_array(g.source.nth("ContentVersion", b.index)))


def _files(body_field: str) -> Callable[[Generator, Batch, dict[str, pa.Array]], None]:
    """File objects: real bytes with matching size, md5, extension and name."""

    def rule(g: Generator, b: Batch, cols: dict[str, pa.Array]) -> None:
        src = file_source(b.index)
        kinds = _mix(src, g.seed) % len(FILE_KINDS)
        ext = pa.array([FILE_KINDS[k][0] for k in kinds])
        title = _join(_cap(_pick(g.pools.word, b.rng, b.n)), "_", _pick(g.pools.word, b.rng, b.n))
        path = _join(title, ".", ext)
        obj = b.obj
        _set(obj, cols, "Name", path if obj.name == "Attachment" else title)
        _set(obj, cols, "Title", title)
        _set(obj, cols, "PathOnClient", path)
        _set(obj, cols, "FileExtension", ext)
        _set(obj, cols, "FileType", pc.utf8_upper(ext))
        _set(obj, cols, "Type", ext)
        _set(obj, cols, "ContentType", pa.array([FILE_KINDS[k][1] for k in kinds]))
        _set(obj, cols, "VersionNumber", pa.array(["1"] * b.n))
        _set(obj, cols, "IsLatest", np.ones(b.n, bool))
        if obj.name == "ContentVersion" and g.source.count("ContentDocument"):
            _set(obj, cols, "ContentDocumentId", id_array(g.source.nth("ContentDocument", b.index)))
        if not g.files:
            return
        bodies = [file_body(g.seed, obj.name, s, FILE_KINDS[k][0]) for s, k in zip(src, kinds, strict=True)]
        _set(obj, cols, body_field, pa.array(bodies, pa.binary()))
        sizes = np.array([len(x) for x in bodies], np.int64)
        for size_field in ("ContentSize", "BodyLength"):
            f = obj.field(size_field)
            if f is not None:
                _set(obj, cols, size_field, sizes.astype(np.int32 if f.type == "int" else np.int64))
        _set(obj, cols, "Checksum", pa.array([hashlib.md5(x).hexdigest() for x in bodies]))

    return rule


RULES: dict[str, Callable[[Generator, Batch, dict[str, pa.Array]], None]] = {
    "Organization": _organization, "RecordType": _record_type, "Profile": _profile, "UserRole": _user_role,
    "User": _user, "Pricebook2": _pricebook, "PricebookEntry": _pricebook_entry, "Opportunity": _opportunity,
    "Case": _closed_by_status("Closed"), "Task": _closed_by_status("Completed"), "Lead": _lead,
    "CampaignMember": _campaign_member, "Event": _event, "ContentDocumentLink": _content_document_link,
    "ContentDocument": _content_document, "Attachment": _files("Body"), "Document": _files("Body"),
    "ContentVersion": _files("VersionData"),
}

@dataclass(frozen=True)
class Fixup:
    """Copy values from a related table: SET col = expr FROM other o WHERE o.<key> = t.<via>."""

    other: str
    via: str
    key: str
    sets: tuple[tuple[str, str], ...]  # (column, expression over o."X" and t."X")


# Consistency that needs another table's values (line items copy their price book entry, ...).
FIXUPS = {
    "OpportunityLineItem": Fixup("PricebookEntry", "PricebookEntryId", "Id", (
        ("Product2Id", 'o."Product2Id"'), ("UnitPrice", 'o."UnitPrice"'),
        ("TotalPrice", 't."Quantity" * o."UnitPrice"'))),
    "FeedComment": Fixup("FeedItem", "FeedItemId", "Id", (("ParentId", 'o."ParentId"'),)),
    "ContentDocument": Fixup("ContentVersion", "Id", "ContentDocumentId", tuple(
        (c, f'o."{c}"') for c in ("Title", "FileExtension", "FileType", "ContentSize"))),
}


def run_fixups(store: Store, obj: SObject, min_id: str) -> None:
    """Apply the object's cross-table consistency rule to rows with Id >= min_id (new rows)."""
    fix = FIXUPS.get(obj.name)
    other = store.schema.get(fix.other) if fix else None
    if other is None or not obj.field(fix.via) or not other.field(fix.key):
        return

    def present(col: str, expr: str) -> bool:
        return bool(obj.field(col)) and all(obj.field(c) for c in re.findall(r't\."(\w+)"', expr)) and all(
            other.field(c) for c in re.findall(r'o\."(\w+)"', expr))

    sets = [f"{quote(c)} = {e}" for c, e in fix.sets if present(c, e)]
    if sets:
        store.cursor().execute(
            f"UPDATE {store.table(obj)} AS t SET {', '.join(sets)} FROM {store.table(other)} AS o "
            f"WHERE o.{quote(fix.key)} = t.{quote(fix.via)} AND t.\"Id\" >= ?", [min_id])


# --- files ---------------------------------------------------------------------------------------

FILE_KINDS = (("txt", "text/plain"), ("csv", "text/csv"), ("png", "image/png"), ("json", "application/json"))


def file_source(index: np.ndarray) -> np.ndarray:
    """Every 10th file repeats the bytes of an earlier one, so a content-addressed backup can dedupe."""
    return np.where(index % 10 == 9, index - 5, index)


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    mixed = (np.asarray(values, np.uint64) * np.uint64(0x9E3779B1) + np.uint64(seed & 0xFFFF)) >> np.uint64(7)
    return mixed.astype(np.int64)


def file_body(seed: int, obj: str, src: int, ext: str) -> bytes:
    """Deterministic bytes of one file: 100 B - 20 KB, about 3% up to 200 KB."""
    rng = rng_for(seed, obj, "file", src)
    large = rng.random() < 0.03
    size = int(rng.integers(20_000, 200_000)) if large else int(min(max(rng.lognormal(7.5, 1), 100), 20_000))
    return _body(ext, rng, size)


def _body(ext: str, rng: np.random.Generator, size: int) -> bytes:
    if ext == "png":
        side = max(4, int((size / 3) ** 0.5))
        raw = b"".join(b"\0" + rng.bytes(side * 3) for _ in range(side))
        head = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"IDAT", zlib.compress(raw)) + \
            _chunk(b"IEND", b"")
    words = np.array(["alpha", "beta", "gamma", "delta", "lorem", "ipsum", "sales", "order", "invoice",
                      "total"])
    n = max(1, size // 6)
    picks = words[rng.integers(0, len(words), n)]
    if ext == "csv":
        nums = rng.integers(0, 100_000, n)
        lines = [f"{w},{v},{v % 97}" for w, v in zip(picks.tolist(), nums.tolist(), strict=True)]
        return ("name,value,score\n" + "\n".join(lines[: max(1, size // 18)]) + "\n").encode()
    text = " ".join(picks.tolist())[:size]
    return (f'{{"note": "{text}"}}' if ext == "json" else text).encode()


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


# --- counts and order ----------------------------------------------------------------------------

def record_types(schema) -> list[tuple[str, str]]:
    """(sObject, record type name) for every record type the schema declares, in schema order."""
    out = []
    for obj in schema:
        for rt in obj.record_types:
            out.append((obj.name, rt["name"] if isinstance(rt, dict) else str(rt)))
    return out


def plan_counts(schema, scale: int, counts: dict[str, int] | None = None) -> dict[str, int]:
    """Rows per object: fixed small objects plus `scale` spread by realistic ratios."""
    out: dict[str, int] = {}
    holders = [o for o in schema if o.key_prefix]
    for o in holders:
        if o.name in FIXED:
            out[o.name] = FIXED[o.name]
        elif o.name == "User":
            out[o.name] = max(5, scale // 2000)
        elif o.name == "RecordType":
            out[o.name] = len(record_types(schema))
    ratio = {o.name: RATIOS.get(o.name, DEFAULT_CUSTOM_RATIO if o.custom else 0.0)
             for o in holders if o.name not in out}
    total = sum(ratio.values()) or 1.0
    budget = max(scale - sum(out.values()), 0)
    for name, r in ratio.items():
        out[name] = max(MIN_ROWS, round(budget * r / total))
    overrides = {}
    for name, n in (counts or {}).items():
        obj = schema.get(name)
        if obj is None or not obj.key_prefix:
            raise ValueError(f"unknown object or object without records: {name}")
        overrides[obj.name] = n
    out.update(overrides)
    if "ContentVersion" in out and "ContentDocument" in out and "ContentVersion" not in overrides:
        out["ContentVersion"] = out["ContentDocument"]  # one version per document
    if "PricebookEntry" in out and "PricebookEntry" not in overrides:
        # every product in every price book
        out["PricebookEntry"] = out.get("Product2", 0) * out.get("Pricebook2", 0)
    return out


def dependency_order(schema, names: list[str]) -> list[str]:
    """Parents before children where the references allow it (cycles keep schema order)."""
    wanted = set(names)
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: set[str]) -> None:
        if name in seen or name in path:
            return
        path.add(name)
        for f in schema.get(name).stored_fields:
            for t in f.reference_to:
                canon = schema.get(t).name
                if canon in wanted and canon != name and not f.system:
                    visit(canon, path)
        path.discard(name)
        seen.add(name)
        done.append(name)

    for n in names:
        visit(n, set())
    return done


# --- public API ----------------------------------------------------------------------------------

def generate(store: Store, *, seed: int, scale: int, counts: dict[str, int] | None = None,
             start: datetime, files: bool = True, sandbox: bool = False) -> dict[str, int]:
    """Fill the store with a realistic org; the same (seed, scale, counts) gives identical rows.

    `start` is the org's "now" (naive UTC): records were created in the two years before it.
    `files=False` leaves file bodies out (benchmarks). Returns the rows written per object.
    """
    start = start.replace(tzinfo=None, microsecond=start.microsecond // 1000 * 1000)
    schema = store.schema
    plan = {k: v for k, v in plan_counts(schema, scale, counts).items() if v > 0}
    ranges = {name: (store.id_range(schema.get(name), n)[0], n) for name, n in plan.items()}
    source = IdSource(store, ranges)
    gen = Generator(store, source, seed=seed, start=start, files=files, sandbox=sandbox)
    end_ms = int(np.datetime64(start, "ms").astype(np.int64)) - 1
    for name in dependency_order(schema, list(plan)):
        obj = schema.get(name)
        first, n = ranges[name]
        store.append(obj, _batches(gen, obj, first, n, end_ms))
        run_fixups(store, obj, make_id(obj.key_prefix, first))
    refresh_rollups(store)
    _recycle_bin(store, source, seed, end_ms)
    return plan


def _batches(gen: Generator, obj: SObject, first: int, n: int, end_ms: int) -> Iterator[pa.Table]:
    """Rows in creation order over the last two years; audit times ordered Created <= Modified <= Stamp."""
    span = HISTORY_DAYS * 86_400_000
    size = 2_000 if obj.name in FILE_OBJECTS else BATCH_ROWS  # bodies keep file batches small
    for lo in range(0, n, size):
        index = np.arange(lo, min(lo + size, n))
        rng = rng_for(gen.seed, obj.name, lo)
        created = end_ms - span + ((index + rng.random(len(index))) / n * span).astype(np.int64)
        modified = created + ((end_ms - created) * rng.random(len(index)) ** 4).astype(np.int64)
        later = (rng.random(len(index)) < 0.1) * rng.integers(0, 3_600_000, len(index))
        yield gen.table(Batch(obj, index, first + index, created, modified,
                              np.minimum(modified + later, end_ms), rng))


def _recycle_bin(store: Store, source: IdSource, seed: int, end_ms: int) -> None:
    """A few Account/Contact/Case records sit in the recycle bin, deleted in the last 10 days."""
    for name in RECYCLE_OBJECTS:
        obj = store.schema.get(name)
        count = source.count(name)
        if obj is None or count < 2:
            continue
        rng = rng_for(seed, name, "recycle")
        k = min(max(2, count // 500), 200)
        rows = np.sort(rng.choice(count, k, replace=False))
        when = (end_ms - rng.integers(60_000, 10 * 86_400_000, k)).astype("datetime64[ms]")
        soft_delete(store, obj, pa.table({"Id": id_array(source.nth(name, rows)), "ts": pa.array(when)}),
                    clamp=True)


# --- shared with churn and the DML engine: roll-ups --------------------------------------------

def rollup_fields(schema) -> list[tuple[SObject, Field, SObject, Field, Field | None, str]]:
    """(parent, field, child, child reference, summarised child field, function) for every roll-up."""
    out = []
    for parent in schema:
        for f in parent.stored_fields:
            if not f.rollup:
                continue
            spec = {k.lower(): v for k, v in f.rollup.items()}
            child = schema.get(spec.get("object", ""))
            if child is None:
                continue
            refs = [c for c in child.stored_fields
                    if parent.name in [schema.get(t).name for t in c.reference_to]]
            refs.sort(key=lambda c: not c.master_detail)
            via = child.field(spec["via"]) if spec.get("via") else (refs[0] if refs else None)
            summed = child.field(spec["field"]) if spec.get("field") else None
            if via is not None:
                out.append((parent, f, child, via, summed, str(spec.get("function", "SUM")).upper()))
    return out


def refresh_rollups(store: Store, stamp: datetime | None = None) -> dict[str, int]:
    """Recompute roll-up summaries from live children.

    With `stamp`, changed parents get it as SystemModstamp (a system update, as on Salesforce).
    """
    out: dict[str, int] = {}
    cur = store.cursor()
    with store.write_lock:
        for parent, f, child, via, summed, fn in rollup_fields(store.schema):
            arg = "*" if summed is None else f"c.{store.column(summed)}"
            agg = f"{fn if fn in ('SUM', 'COUNT', 'MIN', 'MAX', 'AVG') else 'SUM'}({arg})"
            value = f"coalesce({agg}, 0)" if fn in ("SUM", "COUNT") else agg
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE _rollup AS SELECT p.\"Id\", a.v FROM {store.table(parent)} p "
                f"LEFT JOIN (SELECT c.{store.column(via)} AS pid, {value} AS v FROM {store.table(child)} c "
                f"WHERE c.{quote(DELETED_AT)} IS NULL GROUP BY 1) a ON a.pid = p.\"Id\"")
            if fn in ("SUM", "COUNT"):
                cur.execute("UPDATE _rollup SET v = 0 WHERE v IS NULL")
            sets = [f"{store.column(f)} = r.v"]
            params: list = []
            if stamp is not None and parent.field("SystemModstamp"):
                sets.append('"SystemModstamp" = ?')
                params.append(stamp.replace(tzinfo=None))
            n = cur.execute(f'UPDATE {store.table(parent)} AS p SET {", ".join(sets)} FROM _rollup r '
                            f'WHERE r."Id" = p."Id" AND p.{store.column(f)} IS DISTINCT FROM r.v',
                            params).fetchone()[0]
            cur.execute("DROP TABLE _rollup")
            out[parent.name] = out.get(parent.name, 0) + n
    return out
