"""What the command lines share: argparse value types, and flags for a config's fields."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any

__all__ = [
    "positive_int",
    "non_negative_int",
    "positive_float",
    "checkpoint_step",
    "add_config_flags",
    "config_overrides",
]


def positive_int(text: str) -> int:
    """An integer > 0, else argparse's one-line error."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0, else argparse's one-line error."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0, else argparse's one-line error."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _value_parser(hint):
    """Argparse ``type`` for a field annotated ``hint`` (int, float, str, their ``| None``)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if optional and len(args) == 1 else hint
    if base not in (int, float, str):
        return _json_value
    name = base.__name__

    def parse(text: str):
        if optional and text.lower() == "none":
            return None
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None

    parse.__name__ = name  # argparse names the type in its error messages
    return parse


def _json_value(text: str):
    """A JSON value; objects become sorted tuples of (key, value) pairs (hashable configs)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r}: {err}") from None
    return tuple(sorted(value.items())) if isinstance(value, dict) else value


_json_value.__name__ = "json"


def checkpoint_step(text: str) -> int | str:
    """'best', 'latest' or a step number >= 0, else argparse's one-line error."""
    if text in ("best", "latest"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'best', 'latest' or a step number, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a step number must be >= 0, got {value}")
    return value


def add_config_flags(parser: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of the dataclass ``cls``, ``--field-name VALUE`` or ``--config.field_name=VALUE``.

    Values parse by the field's annotation: numbers and strings (``none`` for an optional
    field's None), booleans as ``--flag`` / ``--no-flag``, anything else as JSON. Flags not
    given keep the config's value (`config_overrides` returns only the given ones).
    """
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(
        f"{cls.__name__} fields", f"override {cls.__module__}.{cls.__name__} (see its docstring)"
    )
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        names = (f"--{field.name.replace('_', '-')}", f"--config.{field.name}")
        kw = {"dest": f"config.{field.name}", "default": argparse.SUPPRESS}
        if hints[field.name] is bool:
            group.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
        else:
            parse = _value_parser(hints[field.name])
            group.add_argument(*names, type=parse, metavar=parse.__name__.upper(), **kw)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The fields given on the command line (`add_config_flags`), by name."""
    return {k.removeprefix("config."): v for k, v in vars(args).items() if k.startswith("config.")}
