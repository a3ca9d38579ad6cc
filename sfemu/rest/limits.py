"""`/limits` and `/limits/recordCount`.

Backup tools budget on these: tap-salesforce needs `DailyBulkApiBatches`, everyone reads
`DailyApiRequests`, CumulusCI picks REST or Bulk from recordCount. Usage numbers come from the
org's call ledger and store; limits nothing in the emulator consumes report Max == Remaining.
"""

from __future__ import annotations

from starlette.responses import Response

from sfemu.limits import WINDOW
from sfemu.routing import DATA, Ctx, json_response, route
from sfemu.store import DELETED_AT, quote

BULK_BATCHES_MAX = 15000
BULK2_QUERY_JOBS_MAX = 10000
BULK2_QUERY_STORAGE_MB = 976562
STORAGE_MB = 10240  # Enterprise Edition baseline for data and file storage
# Salesforce's data storage per sandbox kind; a full copy gets its production org's allocation.
SANDBOX_STORAGE_MB = {"developer": 200, "developer_pro": 1024, "partial": 5120}
RECORD_BYTES = 2048  # Salesforce charges 2 KB of data storage per record
MB = 1024 * 1024
SIZE_FIELDS = ("BodyLength", "ContentSize")

# Limits reported with fixed allocations (name -> Max); nothing in the emulator consumes them.
STATIC_LIMITS = {
    "ActiveScratchOrgs": 3, "AnalyticsExternalDataSizeMB": 40960, "ConcurrentAsyncGetReportInstances": 200,
    "ConcurrentEinsteinDataInsightsStoryCreation": 5, "ConcurrentEinsteinDiscoveryStoryCreation": 2,
    "ConcurrentSyncReportRuns": 20, "DailyAnalyticsDataflowJobExecutions": 60,
    "DailyAnalyticsUploadedFilesSizeMB": 51200, "DailyAsyncApexExecutions": 250000,
    "DailyAsyncApexTests": 500,
    "DailyDeliveredPlatformEvents": 10000, "DailyDurableGenericStreamingApiEvents": 10000,
    "DailyDurableStreamingApiEvents": 10000, "DailyEinsteinDataInsightsStoryCreation": 1000,
    "DailyEinsteinDiscoveryPredictAPICalls": 50000, "DailyEinsteinDiscoveryPredictionsByCDC": 500000,
    "DailyEinsteinDiscoveryStoryCreation": 100, "DailyFunctionsApiCallLimit": 235000,
    "DailyGenericStreamingApiEvents": 10000, "DailyScratchOrgs": 6,
    "DailyStandardVolumePlatformEvents": 10000,
    "DailyStreamingApiEvents": 10000, "DailyWorkflowEmails": 1000, "DurableStreamingApiConcurrentClients": 20,
    "HourlyAsyncReportRuns": 1200, "HourlyDashboardRefreshes": 200, "HourlyDashboardResults": 5000,
    "HourlyDashboardStatuses": 999999999, "HourlyLongTermIdMapping": 100000,
    "HourlyManagedContentPublicRequests": 50000, "HourlyODataCallout": 1000,
    "HourlyPublishedPlatformEvents": 50000, "HourlyPublishedStandardVolumePlatformEvents": 1000,
    "HourlyShortTermIdMapping": 100000, "HourlySyncReportRuns": 500, "HourlyTimeBasedWorkflow": 50,
    "MassEmail": 10, "MonthlyEinsteinDiscoveryStoryCreation": 500,
    "MonthlyPlatformEventsUsageEntitlement": 0, "Package2VersionCreates": 6,
    "Package2VersionCreatesWithoutValidation": 500, "PrivateConnectOutboundCalloutHourlyLimitMB": 0,
    "PublishCallbackUsageInApex": 5000000, "SingleEmail": 15, "StreamingApiConcurrentClients": 20,
}


def _limit(maximum: int, used: int = 0) -> dict[str, int]:
    return {"Max": maximum, "Remaining": max(maximum - used, 0)}


def _bulk2_query_jobs(ctx: Ctx) -> int:
    """Bulk 2.0 query jobs created in the last 24 hours, from the call ledger."""
    since = ctx.org.clock.now() - WINDOW
    return sum(1 for c in ctx.org.limits.ledger() if c.at > since and c.method == "POST"
               and c.status < 300 and c.path.endswith("/jobs/query"))


def _storage_mb(ctx: Ctx) -> tuple[int, int]:
    """(data MB, file MB) used: 2 KB per live record, plus the bytes of every blob.

    Blob sizes come from the object's size field (BodyLength, ContentSize) when it has one, so a
    /limits call does not read every file body.
    """
    store, records, blob_bytes = ctx.org.store, 0, 0
    for obj in ctx.org.schema:
        records += store.count(obj)
        for f in obj.fields.values():
            if f.type != "base64" or not f.stored:
                continue
            size = next((s for s in map(obj.field, SIZE_FIELDS) if s is not None and s.stored), None)
            measure = f"sum({store.column(size)})" if size else f"sum(octet_length({store.column(f)}))"
            blob_bytes += store.cursor().execute(
                f"SELECT coalesce({measure}, 0) FROM {store.table(obj)} WHERE {quote(DELETED_AT)} IS NULL"
            ).fetchone()[0]
    return records * RECORD_BYTES // MB, int(blob_bytes) // MB


def _data_storage(ctx: Ctx) -> int:
    settings = ctx.org.settings
    return SANDBOX_STORAGE_MB.get(settings.sandbox_type, STORAGE_MB) if settings.sandbox else STORAGE_MB


def get_limits(ctx: Ctx) -> Response:
    limits = ctx.org.limits
    data_mb, file_mb = _storage_mb(ctx)
    body: dict[str, dict] = {name: _limit(m) for name, m in STATIC_LIMITS.items()}
    body.update({
        "DailyApiRequests": {"Max": limits.daily_max, "Remaining": limits.remaining()},
        "DailyBulkApiBatches": _limit(BULK_BATCHES_MAX, limits.bulk_batches_used()),
        "DailyBulkV2QueryFileStorageMB": _limit(BULK2_QUERY_STORAGE_MB),
        "DailyBulkV2QueryJobs": _limit(BULK2_QUERY_JOBS_MAX, _bulk2_query_jobs(ctx)),
        "DataStorageMB": _limit(_data_storage(ctx), data_mb),
        "FileStorageMB": _limit(STORAGE_MB, file_mb),
        "PermissionSets": {**_limit(1500, 3), "CreateCustom": _limit(1000, 3)},
    })
    return json_response(dict(sorted(body.items())))


def record_count(ctx: Ctx) -> Response:
    """Live record counts; objects with no records are left out, as Salesforce does."""
    store, schema = ctx.org.store, ctx.org.schema
    wanted = ctx.arg("sObjects")
    if wanted:
        named = (schema.get(n.strip()) for n in wanted.split(",") if n.strip())
        objects = [o for o in named if o is not None]
    else:
        objects = sorted(schema, key=lambda o: o.name)
    counts = [(o.name, store.count(o)) for o in objects]
    return json_response({"sObjects": [{"count": n, "name": name} for name, n in counts if n > 0]})


ROUTES = [
    route("GET", DATA + r"/limits", get_limits),
    route("GET", DATA + r"/limits/recordCount", record_count),
]
