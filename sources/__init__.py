"""Invoicing providers as dlt sources.

Each provider lives in its own folder, named like its dlt source, its config section
(`[sources.<name>]`) and the value of the `provider` column. The folder's `__init__.py`
exposes `PROVIDER`, a `sources.shared.provider.Provider` that the pipeline discovers by
itself: adding a provider is one new folder plus its secrets stanza.

`sources.shared` is the one layer every provider reuses: HTTP with retries and rate budgets,
pagination, exact JSON decoding, redaction, the canonical tables and run statistics.
"""
