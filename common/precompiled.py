"""A queryset whose SQL is written once per process and then run again with new values.

Django compiles a queryset to SQL on every evaluation. For a read with a few `select_related`
joins that is most of the read's CPU (profiled: 1.8 ms to compile the post's locked read of a
conversation with its customer, profile, agent and rating, against ~0.2 ms to send it and
build the objects). A hot read whose shape never changes can skip that: build the queryset once
with sentinel values, keep the compiled SQL and the compiler's description of the columns, and
for each call substitute the real values into the parameters and build the objects exactly as
Django's `ModelIterable` does (same `from_db`, same related populators, same converters).

Only for model-instance querysets of a fixed shape (filters, joins, ordering, limits, locking
fixed; only filter *values* change). A sentinel that Django transforms before it reaches the
parameters (``__contains`` wraps it in ``%``) is refused when the query is first compiled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models, router
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, ValuesIterable, get_related_populators
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)

# Values no real row carries; each parameter gets its own.
_INT_SENTINEL = -7_391_000_000_000
_STR_SENTINEL = "\x1fprecompiled-{}\x1f"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Per SQL parameter: the name of the value to put there, or None to keep `constants[i]`.
    slots: tuple[str | None, ...]
    constants: tuple[Any, ...]
    compiler: Any
    locks: bool
    # A model-instance queryset: how Django's ModelIterable builds each object.
    init_list: tuple[str, ...] = ()
    fields_start: int = 0
    fields_end: int = 0
    populators: tuple[Any, ...] = ()
    # A `.values()` queryset: the keys of each row.
    names: tuple[str, ...] = ()


class PrecompiledQuery(Generic[M]):
    """`build(**values)` returns a queryset of `model`; `kinds` names each value's type (int or
    str)."""

    def __init__(self, model: type[M], build: Callable[..., QuerySet[M]], **kinds: type) -> None:
        for name, kind in kinds.items():
            if kind not in (int, str):
                raise TypeError(f"{name}: only int and str values can be precompiled")
        self.model = model
        self._build = build
        self._kinds = kinds
        # Per process, not per thread: under ASGI every request runs in a thread of its own.
        # The kept compiler is only read (its column description and value converters, which
        # take the backend's operations, not a live connection's state).
        self._by_alias: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _sentinels(self) -> dict[str, Any]:
        return {
            name: _INT_SENTINEL - i if kind is int else _STR_SENTINEL.format(i)
            for i, (name, kind) in enumerate(self._kinds.items())
        }

    def _compile(self, alias: str) -> _Compiled:
        sentinels = self._sentinels()
        queryset = self._build(**sentinels)
        if queryset.model is not self.model:
            raise TypeError(f"the queryset is of {queryset.model}, not {self.model}")
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        by_value = {value: name for name, value in sentinels.items()}
        slots = tuple(by_value.get(p) if isinstance(p, int | str) else None for p in params)
        missing = set(sentinels) - set(slots)
        if missing:
            raise ValueError(f"values not found verbatim in the SQL parameters: {missing}")
        common = {
            "sql": sql,
            "slots": slots,
            "constants": tuple(params),
            "compiler": compiler,
            "locks": queryset.query.select_for_update,
        }
        if queryset._known_related_objects:
            raise ValueError("known related objects are not precompiled")
        if issubclass(queryset._iterable_class, ValuesIterable):
            query = queryset.query
            names = (*query.extra_select, *query.values_select, *query.annotation_select)
            return _Compiled(**common, names=names)
        if queryset._iterable_class is not ModelIterable or compiler.annotation_col_map:
            raise ValueError("only model instances (no annotations) or .values() rows")
        klass_info = compiler.klass_info
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return _Compiled(
            **common,
            init_list=tuple(f[0].target.attname for f in compiler.select[start:end]),
            fields_start=start,
            fields_end=end,
            # Built once: a populator only reads what it was built with.
            populators=tuple(get_related_populators(klass_info, compiler.select, alias)),
        )

    def _compiled(self, alias: str) -> _Compiled:
        compiled = self._by_alias.get(alias)
        if compiled is None:
            with self._lock:
                compiled = self._by_alias.get(alias)
                if compiled is None:
                    compiled = self._by_alias[alias] = self._compile(alias)
        return compiled

    def _run(self, values: dict[str, Any]) -> tuple[_Compiled, str, Any]:
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        compiled = self._compiled(alias)
        if compiled.locks and connection.get_autocommit():
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = [
            compiled.constants[i] if name is None else values[name]
            for i, name in enumerate(compiled.slots)
        ]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        compiler = compiled.compiler
        if compiler.has_extra_select:  # ordering columns appended to the select: not returned
            rows = [row[: compiler.col_count] for row in rows]
        return compiled, alias, compiler.results_iter(results=[rows])

    def all(self, **values: Any) -> list[M]:
        """The model instances (a model queryset)."""
        compiled, alias, rows = self._run(values)
        if compiled.names:
            raise TypeError("a .values() query: use rows()")
        model_cls = self.model
        objects = []
        for row in rows:
            obj = model_cls.from_db(
                alias, compiled.init_list, row[compiled.fields_start : compiled.fields_end]
            )
            for populator in compiled.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects

    def objects_from_rows(self, rows: list[tuple]) -> list[M]:
        """Model instances from rows another statement returned (an `UPDATE ... RETURNING`)
        with this query's columns in this query's order: `returning_columns()`."""
        alias = router.db_for_read(self.model)
        compiled = self._compiled(alias)
        if compiled.names or compiled.populators or compiled.fields_start:
            raise TypeError("only a model query without joins")
        return [
            self.model.from_db(alias, compiled.init_list, row)
            for row in compiled.compiler.results_iter(results=[rows])
        ]

    def returning_columns(self) -> str:
        """The quoted columns of `objects_from_rows`, in order (no table prefix)."""
        alias = router.db_for_read(self.model)
        compiled = self._compiled(alias)
        quote = connections[alias].ops.quote_name
        columns = {f.attname: f.column for f in self.model._meta.concrete_fields}
        return ", ".join(quote(columns[name]) for name in compiled.init_list)

    def rows(self, **values: Any) -> list[dict[str, Any]]:
        """The rows as dicts (a `.values()` queryset), as Django's ValuesIterable gives them."""
        compiled, _alias, rows = self._run(values)
        if not compiled.names:
            raise TypeError("a model query: use all()")
        names = compiled.names
        return [dict(zip(names, row, strict=True)) for row in rows]

    def get(self, **values: Any) -> M:
        """The one row, or the model's `DoesNotExist` (`MultipleObjectsReturned` for more)."""
        objects = self.all(**values)
        model = self.model
        if not objects:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(objects) > 1:
            raise model.MultipleObjectsReturned(f"{len(objects)} {model._meta.object_name}s")
        return objects[0]


# --- inserts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Insert:
    sql: str
    fields: tuple[Any, ...]
    returns_pk: bool


_inserts: dict[tuple[type[Model], str], _Insert] = {}


def _insert_for(model: type[Model], alias: str) -> _Insert | None:
    key = (model, alias)
    if key not in _inserts:
        connection = connections[alias]
        meta = model._meta
        # The auto-incremented key is left to the database and returned, as save() does.
        fields = [f for f in meta.local_concrete_fields if not (f is meta.pk and f.db_returning)]
        # What this plain statement does not do: inherited tables, database defaults,
        # generated columns, other returned columns. Such models keep Django's save().
        if meta.parents or any(
            getattr(f, "generated", False)
            or getattr(f, "db_default", models.NOT_PROVIDED) is not models.NOT_PROVIDED
            or (f is not meta.pk and f.db_returning)
            for f in meta.concrete_fields
        ):
            _inserts[key] = None
        else:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(f.column) for f in fields)
            placeholders = ", ".join(["%s"] * len(fields))
            returns_pk = connection.features.can_return_columns_from_insert
            table = quote(meta.db_table)
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
            if returns_pk:
                sql += f" RETURNING {quote(meta.pk.column)}"
            _inserts[key] = _Insert(sql=sql, fields=tuple(fields), returns_pk=returns_pk)
    return _inserts[key]


def model_insert(obj: Model) -> Model:
    """Insert a new row for `obj` (what `obj.save()` does for a new object of a model without
    save signals or an overridden save), the statement written once per model and database.

    Django's save() builds the INSERT anew each time (~1 ms of CPU for a twenty-column row,
    profiled); the values here are prepared by each field exactly as Django's insert prepares
    them (`pre_save` for auto_now_add, `get_db_prep_save` for JSON, dates and keys). Callers
    use it only for models nothing listens to (save signals are not sent)."""
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    insert = _insert_for(model, alias)
    if insert is None or obj.pk is not None:
        obj.save(force_insert=True, using=alias)
        return obj
    connection = connections[alias]
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in insert.fields]
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, params)
        if insert.returns_pk:
            pk = cursor.fetchone()[0]
        else:
            pk = connection.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = alias
    return obj
