"""Statements every write runs, run on the DBAPI cursor in the group commit's
writer (issue 20).

A fixed Core statement (the outbox row, the key's lookup and answer, a gift's
receipt number and row) costs ~25-30 µs of SQLAlchemy's execution path each
time it runs (the compiled cache's lookup, the parameters built and
processed, events, a result object) against ~5-15 µs in the driver: ~150 µs
of a gift's ~600 in the writer (bench/README.md). Inside a batch,
`Prepared.rows` runs it on the batch connection's DBAPI cursor instead:
compiled once per dialect and set of parameter names, with what SQLAlchemy
itself would use (its SQL, each bind's and each returned column's type
processors, its error classes, values hidden from the message as the
engine's `hide_parameters` hides them), and counted as a statement for the
call's savepoint (groupcommit.InBatch). Elsewhere (a worker's own session)
it runs through the session as any statement. Only statements that need
nothing done at execution may be prepared: a column default SQLAlchemy would
fill in, an expanding IN, a parameter name the driver needs escaped, are
refused when first compiled. `on_cursor` also runs a gift's savepoint
(groupcommit.InBatch, `@grouped(orm=False)`)."""
from __future__ import annotations

from typing import NamedTuple

from sqlalchemy.exc import DBAPIError


class _Form(NamedTuple):
    sql: str
    positional: bool
    binds: tuple  # (name in the SQL, the caller's key, the constant if the statement holds one, processor)
    returns_rows: bool
    results: tuple | None  # each returned column's processor (None: as the driver gives it); None: none at all


class Prepared:
    """A fixed Core statement, run on the cursor inside a batch (see the module doc)."""

    def __init__(self, statement):
        self.statement = statement
        self._forms: dict = {}

    def rows(self, session, params: dict) -> list:
        """The statement run with `params`: the rows it returns (tuples; [] if none)."""
        connection = getattr(session, "batch_connection", None)
        if connection is None:
            result = session.execute(self.statement, params)
            return result.all() if result.returns_rows else []
        form = self._form(connection.dialect, params)
        values = []
        for _name, key, constant, processor in form.binds:
            value = params[key] if key in params else constant
            values.append(value if processor is None else processor(value))
        arguments = tuple(values) if form.positional else \
            {bind[0]: value for bind, value in zip(form.binds, values, strict=True)}
        try:
            rows = on_cursor(connection, form.sql, arguments, form.returns_rows)
        finally:
            session.on_statement()
        if form.results:
            rows = [tuple(value if processor is None else processor(value)
                          for processor, value in zip(form.results, row, strict=True)) for row in rows]
        return rows

    def _form(self, dialect, params: dict) -> _Form:
        names = tuple(params)
        form = self._forms.get((dialect.name, names))
        if form is None:
            form = self._forms[(dialect.name, names)] = self._compile(dialect, names)
        return form

    def _compile(self, dialect, names: tuple) -> _Form:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(names))
        if compiled.insert_prefetch or compiled.update_prefetch or compiled.post_compile_params \
                or compiled.literal_execute_params or compiled.escaped_bind_names:
            raise TypeError(f"not preparable (a value computed at execution): {compiled.string}")
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        order = compiled.positiontup if compiled.positiontup is not None else list(by_name)
        binds = []
        for name in order:
            bind = by_name[name]
            if bind.key not in names and bind.required:
                raise TypeError(f"{self.statement}: no value for {bind.key!r}")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((name, bind.key, None if bind.required else bind.effective_value, processor))
        columns = list(self.statement.exported_columns)  # a SELECT's, or what RETURNING names
        processors = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
        return _Form(compiled.string, compiled.positiontup is not None, tuple(binds), bool(columns),
                     processors if any(processors) else None)


def on_cursor(connection, sql: str, arguments=(), fetch: bool = False) -> list:
    """`sql` run on the DBAPI cursor of a SQLAlchemy `connection` (in its
    transaction): the rows if `fetch`. A driver's error is raised as
    SQLAlchemy's (IntegrityError, OperationalError, ...), the values hidden."""
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, arguments)
        return cursor.fetchall() if fetch else []
    except connection.dialect.loaded_dbapi.Error as exc:
        if connection.dialect.is_disconnect(exc, dbapi_connection, cursor):
            connection.invalidate(exc)
        raise DBAPIError.instance(sql, arguments, exc, connection.dialect.loaded_dbapi.Error,
                                  hide_parameters=True, dialect=connection.dialect) from exc
    finally:
        cursor.close()
