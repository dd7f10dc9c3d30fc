"""Output serializers generated from a TypedDict: the payload is defined once, as a type.

A payload builder is annotated with a TypedDict and returns a plain dict (fast: no serializer
machinery per message on the hot paths). `payload_serializer` turns the same TypedDict into a
DRF serializer whose fields drf-spectacular renders as the OpenAPI component, and whose
`to_representation` is the builder, so the schema cannot drift from what is sent.

Supported annotations: int, str, bool, float, IsoDateTime, `X | None`, `Literal[...]`, nested
TypedDicts, `list[X]`, and `Annotated[X, "help text", SomeChoices]` around any of them (an
Enum, e.g. a Django TextChoices, in the extras makes it a choice field: the model's values).
"""

from __future__ import annotations

import datetime
import enum
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, NewType, Union, get_args, get_origin, get_type_hints

from rest_framework import serializers

# A timestamp as the payload carries it: an ISO 8601 string in the current time zone.
IsoDateTime = NewType("IsoDateTime", str)

_SCALARS: dict[type, type[serializers.Field]] = {
    int: serializers.IntegerField,
    str: serializers.CharField,
    bool: serializers.BooleanField,
    float: serializers.FloatField,
    IsoDateTime: serializers.DateTimeField,
}
_generated: dict[type, type[serializers.Serializer]] = {}


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def _field(tp: Any, *, help_text: str = "", allow_null: bool = False) -> serializers.Field:
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *extra = get_args(tp)
        text = next((e for e in extra if isinstance(e, str)), help_text)
        choices = next((e for e in extra if isinstance(e, type) and issubclass(e, enum.Enum)), None)
        if choices is not None:
            return serializers.ChoiceField(
                choices=[member.value for member in choices],
                help_text=text or None,
                allow_null=allow_null,
            )
        return _field(inner, help_text=text, allow_null=allow_null)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"only `X | None` unions are supported, not {tp}")
        return _field(members[0], help_text=help_text, allow_null=True)
    kwargs: dict[str, Any] = {"help_text": help_text or None, "allow_null": allow_null}
    if origin is Literal:
        return serializers.ChoiceField(choices=list(get_args(tp)), **kwargs)
    if origin is list:
        (item,) = get_args(tp)
        if _is_typeddict(item):
            return payload_serializer(item)(many=True, **kwargs)
        return serializers.ListField(child=_field(item), **kwargs)
    if _is_typeddict(tp):
        return payload_serializer(tp)(**kwargs)
    if tp in _SCALARS:
        return _SCALARS[tp](**kwargs)
    raise TypeError(f"unsupported payload annotation {tp!r}")


def payload_serializer(
    payload_type: type, *, build: Callable[[Any], dict] | None = None, name: str | None = None
) -> type[serializers.Serializer]:
    """A read-only serializer for `payload_type` (a TypedDict); `build(instance)` makes the data.

    Without `build` the instance is expected to be the payload dict already (nested parts).
    The class is named after the TypedDict (or `name`): that is the OpenAPI component name.
    """
    key = payload_type if build is None and name is None else None
    if key is not None and key in _generated:
        return _generated[key]
    fields = {
        field_name: _field(hint)
        for field_name, hint in get_type_hints(payload_type, include_extras=True).items()
    }
    attrs: dict[str, Any] = {**fields, "__doc__": payload_type.__doc__, "__module__": __name__}
    if build is not None:
        attrs["to_representation"] = lambda self, instance: build(instance)
    else:
        attrs["to_representation"] = lambda self, instance: instance
    cls = type(name or payload_type.__name__, (serializers.Serializer,), attrs)
    if key is not None:
        _generated[key] = cls
    return cls


def payload_mismatches(payload: Any, payload_type: Any, path: str = "$") -> list[str]:
    """Where `payload` does not have the shape `payload_type` declares (for tests)."""
    origin = get_origin(payload_type)
    if origin is Annotated:
        inner, *extra = get_args(payload_type)
        choices = next((e for e in extra if isinstance(e, type) and issubclass(e, enum.Enum)), None)
        if choices is not None and payload not in {member.value for member in choices}:
            return [f"{path}: {payload!r} is not one of {choices.__name__}"]
        return payload_mismatches(payload, inner, path)
    if origin in (Union, types.UnionType):
        if payload is None and type(None) in get_args(payload_type):
            return []
        (inner,) = [a for a in get_args(payload_type) if a is not type(None)]
        return payload_mismatches(payload, inner, path)
    if origin is Literal:
        return [] if payload in get_args(payload_type) else [f"{path}: {payload!r} not allowed"]
    if origin is list:
        if not isinstance(payload, list):
            return [f"{path}: not a list"]
        (item,) = get_args(payload_type)
        return [
            m for i, v in enumerate(payload) for m in payload_mismatches(v, item, f"{path}[{i}]")
        ]
    if _is_typeddict(payload_type):
        if not isinstance(payload, dict):
            return [f"{path}: not an object"]
        hints = get_type_hints(payload_type, include_extras=True)
        problems = [f"{path}: unexpected key {k!r}" for k in payload if k not in hints]
        problems += [f"{path}: missing key {k!r}" for k in hints if k not in payload]
        for k, hint in hints.items():
            if k in payload:
                problems += payload_mismatches(payload[k], hint, f"{path}.{k}")
        return problems
    if payload_type is IsoDateTime:
        try:
            datetime.datetime.fromisoformat(payload)
        except (TypeError, ValueError):
            return [f"{path}: not an ISO datetime: {payload!r}"]
        return []
    if payload_type is float and isinstance(payload, int | float) and not isinstance(payload, bool):
        return []
    if isinstance(payload, payload_type) and not (
        payload_type is int and isinstance(payload, bool)
    ):
        return []
    return [f"{path}: {type(payload).__name__} is not {payload_type.__name__}"]
