"""The customer data store, one concept per module (layout and rules in docs/architecture.md):

- :mod:`functions.cdp.eventlog` — the append-only event log (segments per partition, compaction);
- :mod:`functions.cdp.ingest` — parsing deliveries and exports into events (append only, any process);
- :mod:`functions.cdp.synclog` — the sync log: one immutable entry per delivery, folded by the writer;
- :mod:`functions.cdp.refresh` — the single writer: catches derived state up with the log via a watermark;
- :mod:`functions.cdp.rebuild` and :mod:`functions.cdp.identities` — full and incremental rebuilds;
- :mod:`functions.cdp.query` — profile search and the customer page.
"""
