"""Alembic environment of the batch record: runs on the connection the store hands over (no alembic.ini needed).

RecordStore puts its open connection into `config.attributes["connection"]`; for a manual run one may instead set the
main option `sqlalchemy.url` on a programmatic Config. Offline (SQL script) mode is not supported.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

config = context.config


def _run(connection: object) -> None:
    """Configure Alembic on `connection` and run the pending migrations in one transaction."""
    context.configure(connection=connection, target_metadata=None)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("fillfinish record migrations run online only (RecordStore runs them on open)")

_connection = config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    _url = config.get_main_option("sqlalchemy.url")
    if not _url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the record migrations")
    _engine = create_engine(_url)
    try:
        with _engine.begin() as _conn:
            _run(_conn)
    finally:
        _engine.dispose()
