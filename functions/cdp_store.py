"""The customer data store's public surface (the modules of :mod:`functions.cdp`, one concept each).

Kept for callers that predate the split (routes, CLI, benches, tests): every name here is defined in
``functions/cdp/`` and only re-exported.
"""

from __future__ import annotations

from core.cdp.events import events_to_frame
from core.cdp.search import build_search_index
from functions.cdp.common import N_IDENTITY_PARTS, N_PARTS, N_PERSON_PARTS
from functions.cdp.eventlog import (
    event_hash,
    event_segments,
    iter_event_partitions,
    load_events,
    read_partition,
)
from functions.cdp.eventlog import segments as _segments
from functions.cdp.identities import Resolver
from functions.cdp.ingest import ingest_batch, ingest_events, ingest_file, request_refresh
from functions.cdp.query import SORTS, customer_detail, load_profiles, search_customers
from functions.cdp.refresh import Watermark, catch_up, read_watermark, refresh, refresh_job
from functions.cdp.synclog import sync_status

__all__ = [
    "N_PARTS", "N_PERSON_PARTS", "N_IDENTITY_PARTS", "ingest_events", "ingest_batch", "ingest_file",
    "request_refresh", "refresh", "catch_up", "refresh_job", "read_watermark", "Watermark", "load_events",
    "iter_event_partitions", "event_segments", "read_partition", "event_hash", "sync_status", "load_profiles",
    "search_customers", "customer_detail", "build_search_index", "Resolver", "SORTS", "events_to_frame",
    "_segments",
]
