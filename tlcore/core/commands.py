"""The commands of `python -m tlcore`: each one a small declaration, and the parser made of them.

A `Command` says what a subcommand is called, what it does in one line, where its flags come
from and which function runs it:

    BENCH = Command("bench", "our trainer vs a tutorial-style loop", cmd_bench,
                    flags=(run_flags(only=("backbone", ...)), Flags(BenchOptions)))

Every flag is a field of a settings dataclass (RunConfig's run settings through
tlcore.train.config.run_flags, or a small dataclass of the command's own), turned into a flag
by tlcore.core.fields.add_flags: so every flag has help, a type, and its range or choices
checked before the command starts. A command lives beside its work and registers nothing
itself: tlcore.cli lists every command in one place. A bad command line is one `error: ...`
line and exit code 2 (`Parser`), never a traceback; `run(args) -> int` is the exit code.

Flags that mean the same in several commands are made here, once: `threads`, `seed_count` and
`seeds` (a list). Not for: the commands' work, nor tools/ scripts (not the product's command line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tlcore.core.fields import add_flags, seed_list, setting


@dataclass(frozen=True)
class Flags:
    """One group of a command's flags: the fields of the dataclass `settings` (those in `only`, if
    given, less `skip`); `defaults` replaces a field's default for this command (None: not
    given, the command decides)."""

    settings: type
    title: str = "options"
    only: tuple[str, ...] | None = None
    skip: tuple[str, ...] = ()
    defaults: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Command:
    name: str  # `python -m tlcore <name>`
    help: str  # its line in `python -m tlcore --help`
    run: Callable[[argparse.Namespace], int] | None  # the parsed flags -> exit code; None: it has actions
    flags: tuple[Flags, ...] = ()  # where its flags come from, in the order --help shows them
    description: str = ""  # its own --help's text (default: `help`)
    actions: tuple[Command, ...] = ()  # `runs export`, `runs backup`: a command of commands
    as_written: bool = False  # --help keeps the description's line breaks (a module docstring)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """This command's flags (and its actions) on `parser`, and the function that runs it."""
        for group in self.flags:
            add_flags(parser, group.settings, title=group.title, only=group.only, skip=group.skip, defaults=group.defaults)
        if self.actions:
            add_commands(parser, self.actions, dest="action", metavar="ACTION")
        else:
            parser.set_defaults(run=self.run)


class Parser(argparse.ArgumentParser):
    """argparse, with a bad command line said in one line: `error: <prog>: <what>` and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def add_commands(parser: argparse.ArgumentParser, commands, *, dest: str = "command", metavar: str = "COMMAND") -> None:
    """Each of `commands` as a subcommand of `parser`, in order (`--help` lists them so)."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar, help=f"one of the {metavar.lower()}s below")
    seen = set()
    for command in commands:
        if command.name in seen:
            raise ValueError(f"command {command.name!r} is listed twice")
        seen.add(command.name)
        formatter = argparse.RawDescriptionHelpFormatter if command.as_written else argparse.HelpFormatter
        p = sub.add_parser(
            command.name, help=command.help, description=command.description or command.help, formatter_class=formatter
        )
        command.add_to(p)


def parser_of(commands, *, prog: str, description: str) -> Parser:
    """The parser of a program whose subcommands are `commands`."""
    parser = Parser(prog=prog, description=description)
    add_commands(parser, commands)
    return parser


def parser_alone(command: Command, *, prog: str) -> Parser:
    """The parser of one command run on its own (`python -m tlcore.explain.feature_figures`)."""
    formatter = argparse.RawDescriptionHelpFormatter if command.as_written else argparse.HelpFormatter
    parser = Parser(prog=prog, description=command.description or command.help, formatter_class=formatter)
    command.add_to(parser)
    return parser


def main(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse `argv` and run its command. A bad command line exits in parsing (code 2); a setting
    the command itself refuses (a ValueError: LearnerError) is one `error:` line and code 2 too."""
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as e:  # bad settings: one clear line, no traceback
        print(f"error: {e}".replace("\n", " "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ----------------------------------------------------------------------------- flags spelled once


def threads(default: int = 0, why: str = ""):
    """--threads: CPU threads for torch in this process."""
    return setting(default, "CPU threads for torch, 0 = torch's default" + (f" ({why})" if why else ""), lo=0, hi=1024)


def seed_count(default: int):
    """--seeds as a count: seeds 0..N-1."""
    return setting(default, "how many seeds, a count: seeds 0..N-1", lo=1, hi=1000)


def seeds(default: tuple[int, ...]):
    """--seeds as a list: exactly these seeds."""
    return setting(default, "which seeds, a comma-separated list", kind=seed_list)
