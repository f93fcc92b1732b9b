"""Statements that lock and write back many rows at once: the shape of a set-based consumer.

A consumer that folds a batch of events onto rows in Python locks the rows it touches (in key
order: one lock order for every replica, so none deadlock), changes them in memory, and
writes the changed ones back with one ``UPDATE ... FROM unnest``. Both statements take
arrays, so their SQL is the same for any number of rows and is prepared once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY


def lock_rows(table: sa.Table, key: str, columns: Sequence[str]) -> sa.TextClause:
    """``SELECT key, columns ... WHERE key = ANY(:keys) ORDER BY key FOR UPDATE``."""
    return sa.text(
        f"""
        SELECT {", ".join([key, *columns])}
        FROM {table.fullname} WHERE {key} = ANY(:keys)
        ORDER BY {key}
        FOR UPDATE
        """
    ).bindparams(sa.bindparam("keys", type_=ARRAY(table.c[key].type)))


def update_rows(
    table: sa.Table,
    key: str,
    columns: Mapping[str, sa.types.TypeEngine[Any]],
    *,
    casts: Mapping[str, str] | None = None,
    also: str = "",
    extra: Mapping[str, sa.types.TypeEngine[Any]] | None = None,
) -> sa.TextClause:
    """``UPDATE table SET column = u.column ... FROM unnest(:key, :column ...)``: bind one
    array per column (and per ``extra`` array that ``also``, more SET clauses over ``t`` and
    ``u``, may use). ``casts``: a SQL type for a column passed as text (JSON)."""
    casts = casts or {}
    extra = extra or {}
    names = [key, *extra, *columns]
    sets = ", ".join(f"{c} = u.{c}" + (f"::{casts[c]}" if c in casts else "") for c in columns)
    return sa.text(
        f"""
        UPDATE {table.fullname} AS t
        SET {sets}{", " + also if also else ""}
        FROM unnest({", ".join(f":{n}" for n in names)}) AS u({", ".join(names)})
        WHERE t.{key} = u.{key}
        """
    ).bindparams(
        sa.bindparam(key, type_=ARRAY(table.c[key].type)),
        *(sa.bindparam(n, type_=ARRAY(t)) for n, t in extra.items()),
        *(sa.bindparam(c, type_=ARRAY(t)) for c, t in columns.items()),
    )
