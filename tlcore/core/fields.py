"""Settings whose dataclass fields carry their own help text, range and choices.

A settings dataclass (RunConfig, PretrainConfig, MlmConfig) declares each setting once with
`setting(default, help, choices, lo, hi)`. From that one declaration come the value checks
(`check_value`) and the command-line flags (`add_flags`: one --flag per field, its help, type,
choices, range and default), so a flag's help cannot drift from the field's. Not for: the
app's widgets (their tooltips are translated lessons) nor flags that are no field (--out).
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from tlcore.core.messages import LearnerError


def setting(default, help: str, choices: tuple | None = None, lo=None, hi=None):
    """A dataclass field with its help text (and range, choices) kept beside it."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "lo": lo, "hi": hi})


def check_value(field: dataclasses.Field, value: Any) -> None:
    """Raise LearnerError (a ValueError) when `value` is not of the field's kind, in its range
    [lo..hi] or among its choices."""
    meta = field.metadata
    if isinstance(field.default, bool):
        if not isinstance(value, bool):
            raise LearnerError("config.bool", name=field.name, value=repr(value))
        return
    if isinstance(field.default, (int, float)) and not isinstance(value, bool):
        if not isinstance(value, (int, float)):
            raise LearnerError("config.number", name=field.name, value=repr(value))
        if isinstance(field.default, int) and int(value) != value:
            raise LearnerError("config.whole", name=field.name, value=repr(value))
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and not (lo <= value <= hi):
            raise LearnerError("config.range", name=field.name, lo=f"{lo:g}", hi=f"{hi:g}", value=repr(value))
    if meta.get("choices") and value not in meta["choices"]:
        raise LearnerError("config.choice", name=field.name, choices=", ".join(meta["choices"]), value=repr(value))


def help_text(field: dataclasses.Field) -> str:
    """A flag's help: the field's help, its range, and the default (argparse fills it in; a
    command whose default is None says in its description what it does then)."""
    text = field.metadata["help"]
    if field.metadata.get("lo") is not None:
        text += f" [{field.metadata['lo']:g}..{field.metadata['hi']:g}]"
    return text + " (default: %(default)s)"


class _Checked(argparse.Action):
    """Stores a flag's value after `check_value`: a value out of range raises LearnerError, which
    tlcore.cli.main prints as one `error: ...` line before the command starts."""

    def __init__(self, option_strings, dest, *, field: dataclasses.Field, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.field = field

    def __call__(self, _parser, namespace, value, _option_string=None) -> None:
        check_value(self.field, value)
        setattr(namespace, self.dest, value)


def add_flags(
    parser: argparse.ArgumentParser,
    settings: type,
    *,
    title: str,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """One --flag per field of the dataclass `settings` (those in `only`, if given, less `skip`),
    in a group named `title`. `defaults` replaces a field's default for this command; None
    there means "not given" (the command decides)."""
    known = {f.name: f for f in dataclasses.fields(settings)}
    defaults = defaults or {}
    chosen = [f for f in known.values() if (only is None or f.name in only) and f.name not in skip]
    stray = (set(only or ()) | set(skip)) - set(known) | set(defaults) - {f.name for f in chosen}
    if stray:  # a misspelt name would otherwise leave a flag out silently
        raise TypeError(f"{settings.__name__}: no flag {', '.join(sorted(stray))} to add, skip or give a default")
    group = parser.add_argument_group(title)
    for f in chosen:
        flag, default = "--" + f.name.replace("_", "-"), defaults.get(f.name, f.default)
        if isinstance(f.default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text(f))
        else:
            group.add_argument(
                flag,
                action=_Checked,
                field=f,
                type=type(f.default),
                default=default,
                choices=f.metadata.get("choices"),
                help=help_text(f),
            )


def values(args: argparse.Namespace, settings: type) -> dict[str, Any]:
    """The parsed value of every field of `settings` that has a flag in `args`."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(settings) if hasattr(args, f.name)}
