"""How Airflow's metadata engine connects when it runs on SQLite, the local stack's default.

``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS`` (and its ``_ASYNC`` twin) name
:data:`CONNECT_ARGS`; Airflow imports it in every one of its processes.

SQLite lets one connection write at a time; the others wait for the busy timeout, 5 s by
default in Python's sqlite3, then fail with "database is locked". While the stack starts on
two busy cores, the scheduler and the dag-processor held the write lock longer than that,
and the demo crawl's REST trigger answered 500 "Database error" (seen in CI). Waiting up to
a minute costs nothing when the database is free.
"""

from __future__ import annotations

from typing import Any

BUSY_TIMEOUT_S = 60

CONNECT_ARGS: dict[str, Any] = {"timeout": BUSY_TIMEOUT_S}
