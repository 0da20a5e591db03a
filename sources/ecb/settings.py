"""Constants of the ECB's euro foreign exchange reference rates and of the `fx_rates` table."""

from __future__ import annotations

NAME = "ecb"
TABLE = "fx_rates"
# The keys of `[sources.ecb]` (env SOURCES__ECB__<KEY>): arguments of the `ecb` source that dlt fills
# from configuration; `history` reads another `eurofxref-hist.zip` than the shipped one (tests).
KEYS = ("enabled", "base_url", "history")

# The values of `fx_rates.source`.
ECB = "ecb"
USER = "user"

# The folder of the ECB's public files (configuration.md, `[sources.ecb] base_url`).
DEFAULT_BASE_URL = "https://www.ecb.europa.eu/stats/eurofxref"
# The latest business day only; the last 90 calendar days; every day since 4 January 1999.
DAILY_XML = "eurofxref-daily.xml"
NINETY_DAYS_XML = "eurofxref-hist-90d.xml"
HISTORY_ZIP = "eurofxref-hist.zip"
HISTORY_CSV = "eurofxref-hist.csv"  # the one member of HISTORY_ZIP

# `per_eur` is DECIMAL(16, 8). Every rate the ECB has published since 1999 has at most 7 integer
# digits (Turkish lira before 2005: 1,9xx,xxx) and at most 6 decimals (the Latvian lats' and Cyprus
# pound's 0.702804 and 0.585274): 8 and 8 hold them all exactly, and leave a user's rates two more
# decimals. 16 digits is also what keeps the exact SQL conversion inside 128-bit integers
# (pipelines/fx_sql.py). A rate that does not fit is refused, never rounded.
PER_EUR_PRECISION = 16
PER_EUR_SCALE = 8

# The 90-day file covers the last 90 calendar days; a gap that starts earlier than this is read
# from the full history instead (a margin for the days the ECB has not yet replaced).
NINETY_DAYS_REACH = 85
# Seconds one request to the ECB may take; the feed is optional, so it is never waited on long.
TIMEOUT = 30.0
# Rows per Arrow table handed to dlt: the full history is ~7,000 days of up to 41 currencies.
CHUNK_ROWS = 20_000
