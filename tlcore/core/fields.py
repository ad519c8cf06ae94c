"""Settings whose dataclass fields carry their own help text, range and choices.

A settings dataclass (RunConfig, PretrainConfig, MlmConfig, a command's own options) declares
each setting once with `setting(default, help, choices, lo, hi)`. From that one declaration come
the value checks (`check_value`) and the command-line flags (`add_flags`: one --flag per field,
its help, type, choices, range and default), so a flag's help cannot drift from the field's.
Choices may be a function that lists them when first asked (RunConfig's tasks: the task
registry, which loads the families). Not for: the app's widgets (their tooltips are translated
lessons) nor the commands themselves (tlcore.core.commands).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from tlcore.core.messages import LearnerError


def setting(
    default,
    help: str,
    choices: tuple | Registered | Callable[[], tuple] | None = None,
    lo=None,
    hi=None,
    *,
    kind: Callable[[str], Any] | None = None,
    nargs: str | None = None,
    positional: bool = False,
    required: bool = False,
):
    """A dataclass field with its help text (and range, choices) kept beside it. For a flag only:
    `kind` reads one value from the command line when the default does not say how (None, a
    tuple: `seed_list`); `nargs` "+" or "*" takes several words; `positional` is an argument
    without --; `required` a flag the command cannot go without."""
    meta = {"help": help, "choices": choices, "lo": lo, "hi": hi, "kind": kind, "nargs": nargs}
    return dataclasses.field(default=default, metadata={**meta, "positional": positional, "required": required})


@dataclasses.dataclass(frozen=True)
class Registered:
    """Choices that are the names in a registry, named by its module and attribute
    (`Registered("tlcore.train.tasks", "TASKS")`) and read when first asked: a field of a low module
    can offer what a higher one registers without importing it, nor being handed a function of its
    to call back (tools/walks.py counts such calls as climbs)."""

    module: str
    attribute: str

    def names(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(self.module), self.attribute).names())


def choices_of(field: dataclasses.Field) -> tuple | None:
    """The field's choices; a registry's names, or a function's answer, asked now (read when first needed)."""
    choices = field.metadata.get("choices")
    if isinstance(choices, Registered):
        return choices.names()
    return tuple(choices()) if callable(choices) else choices


def seed_list(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2): the seeds of a command whose --seeds is a list."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"seeds are whole numbers >= 0 separated by commas, e.g. 0,1,2; got {text!r}")
    return seeds


def check_value(field: dataclasses.Field, value: Any) -> None:
    """Raise LearnerError (a ValueError) when `value` is not of the field's kind, in its range
    [lo..hi] or among its choices."""
    meta = field.metadata
    if isinstance(field.default, bool):
        if not isinstance(value, bool):
            raise LearnerError("config.bool", name=field.name, value=repr(value))
        return
    if value is None and field.default is None:  # not given: the command decides
        return
    kind = meta.get("kind") if field.default is None else type(field.default)
    if kind in (int, float) and not isinstance(value, bool):
        if not isinstance(value, (int, float)):
            raise LearnerError("config.number", name=field.name, value=repr(value))
        if kind is int and int(value) != value:
            raise LearnerError("config.whole", name=field.name, value=repr(value))
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and not (lo <= value <= hi):
            raise LearnerError("config.range", name=field.name, lo=f"{lo:g}", hi=f"{hi:g}", value=repr(value))
    choices = choices_of(field)
    if choices and value not in choices:
        raise LearnerError("config.choice", name=field.name, choices=", ".join(choices), value=repr(value))


def help_text(field: dataclasses.Field) -> str:
    """A flag's help: the field's help, its range, and the default (argparse fills it in; a
    command whose default is None says in its description what it does then). An argument that
    must be given has no default to show."""
    text = field.metadata["help"]
    if field.metadata.get("lo") is not None:
        text += f" [{field.metadata['lo']:g}..{field.metadata['hi']:g}]"
    if field.metadata.get("positional") or field.metadata.get("required"):
        return text
    return text + " (default: %(default)s)"


class _Checked(argparse.Action):
    """Stores a flag's value after `check_value`: a value out of range is the parser's error (one
    `error: ...` line and exit code 2, tlcore.core.commands.Parser) before the command starts."""

    def __init__(self, option_strings, dest, *, field: dataclasses.Field, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.field = field

    def __call__(self, _parser, namespace, value, _option_string=None) -> None:
        try:
            for one in value if isinstance(value, list) else [value]:  # nargs: each word
                check_value(self.field, one)
        except LearnerError as e:
            raise argparse.ArgumentError(self, str(e)) from None
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
        default, meta = defaults.get(f.name, f.default), f.metadata
        if meta.get("positional"):
            group.add_argument(f.name, nargs=meta.get("nargs"), help=help_text(f))
        elif isinstance(f.default, bool):  # --flag / --no-flag
            group.add_argument(_flag(f), action=argparse.BooleanOptionalAction, default=default, help=help_text(f))
        else:
            if isinstance(default, tuple) and meta.get("kind") and not meta.get("nargs"):
                default = ",".join(map(str, default))  # shown as typed, read by `kind` like a typed value
            named = {"required": True} if meta.get("required") else {"default": default}
            group.add_argument(
                _flag(f),
                action=_Checked,
                field=f,
                type=meta.get("kind") or type(f.default),
                nargs=meta.get("nargs"),
                choices=choices_of(f),
                help=help_text(f),
                **named,
            )


def _flag(field: dataclasses.Field) -> str:
    """The one spelling of a field's flag: lr_mult -> --lr-mult."""
    return "--" + field.name.replace("_", "-")


def values(args: argparse.Namespace, settings: type) -> dict[str, Any]:
    """The parsed value of every field of `settings` that has a flag in `args`."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(settings) if hasattr(args, f.name)}
