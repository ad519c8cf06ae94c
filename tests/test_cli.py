"""The command line's one convention (issue 33, item 4), checked over every command.

Each module that adds commands defines `register_cli(subparsers)`, is listed once in
tlcore.cli.COMMAND_MODULES and registers only its own commands. A flag that is a RunConfig
field comes from RunConfig (tlcore.train.config.add_config_args): its help, range and choices
are the field's, so nobody spells them again; a command whose settings are a dataclass of its
own (pretrain, pretrain-text) turns that dataclass's fields into flags with the same helper.
A value out of a setting's range is one `error:` line and exit code 2, before any work starts."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import fields
from pathlib import Path

import pytest

from tlcore import cli
from tlcore.core import fields as setting_fields
from tlcore.lab.pretrain_vision import PretrainConfig
from tlcore.text.mlm import MlmConfig
from tlcore.train.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent
RUN_SETTINGS = {f.name: f for f in fields(RunConfig)}
OWN_SETTINGS = {"pretrain": PretrainConfig, "pretrain-text": MlmConfig}  # commands whose settings are their own dataclass


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return found[0].choices if found else {}


def every_command() -> dict[str, argparse.ArgumentParser]:
    """'finetune', ..., and nested ones as 'runs export'."""
    out = {}
    for name, parser in subcommands(cli.build_parser()).items():
        out[name] = parser
        out.update({f"{name} {inner}": p for inner, p in subcommands(parser).items()})
    return out


COMMANDS = every_command()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_commands_help_prints_and_exits_cleanly(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*name.split(), "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m tlcore {name}")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_flag_named_like_a_run_setting_says_what_the_setting_says(name):
    """Its help is the field's, word for word (with range and default added the one way), so the
    help of --epochs cannot drift from RunConfig's in one command."""
    owner = OWN_SETTINGS.get(name, RunConfig)
    own = {f.name: f for f in fields(owner)}
    for action in COMMANDS[name]._actions:
        if not action.option_strings or action.dest not in RUN_SETTINGS | own:
            continue
        field = own.get(action.dest) or RUN_SETTINGS[action.dest]
        assert action.help.startswith(field.metadata["help"]), (name, action.dest)
        assert action.help == setting_fields.help_text(field), (name, action.dest)
        assert action.option_strings[0] == "--" + action.dest.replace("_", "-")


def modules_defining_register_cli() -> set[str]:
    found = set()
    for path in (ROOT / "tlcore").rglob("*.py"):
        if "\ndef register_cli(" in path.read_text(encoding="utf-8"):
            found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def test_every_module_with_register_cli_is_listed_once_and_registers_only_its_own_commands():
    assert len(cli.COMMAND_MODULES) == len(set(cli.COMMAND_MODULES)), "a module listed twice"
    assert set(cli.COMMAND_MODULES) == modules_defining_register_cli()
    registered = {}
    for module_name in cli.COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        importlib.import_module(module_name).register_cli(parser.add_subparsers())
        for name, command in subcommands(parser).items():
            assert name not in registered, f"{name} registered by {registered.get(name)} and {module_name}"
            registered[name] = module_name
            for p in [command, *subcommands(command).values()]:
                if (func := p.get_default("func")) is not None:
                    assert func.__module__ == module_name, f"{module_name} registers {name}, run by {func.__module__}"
    assert set(registered) == set(subcommands(cli.build_parser())), "a command registered outside COMMAND_MODULES"


@pytest.mark.parametrize(
    "argv",
    [
        ["finetune", "--epochs", "0"],
        ["bench", "--epochs", "0"],
        ["text-bench", "--per-class", "100001"],
        ["text-scale", "--per-class", "0"],
        ["estimate", "--image-size", "4"],
        ["matrix", "--val-per-class", "0"],
        ["transfer-depth", "--epochs", "0"],
        ["class-experiment", "--batch-size", "0"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_a_setting_out_of_its_range_is_one_error_line_before_any_work(argv, monkeypatch, capsys):
    """The commands' work is replaced by a stub: an out-of-range value must stop at parsing."""
    build = cli.build_parser

    def stubbed() -> argparse.ArgumentParser:
        parser = build()
        for command in subcommands(parser).values():
            command.set_defaults(func=lambda args: 0)
        return parser

    monkeypatch.setattr(cli, "build_parser", stubbed)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "must be between" in err


def test_a_commands_own_defaults_show_in_its_help_and_parse():
    """bench keeps its small defaults (resnet18, digits, 64 px) with RunConfig's help text."""
    bench = COMMANDS["bench"]
    args = bench.parse_args([])
    assert (args.backbone, args.dataset, args.per_class, args.image_size) == ("resnet18", "digits", 60, 64)
    assert "(default: resnet18)" in " ".join(bench.format_help().split())


def test_a_misspelt_setting_name_is_refused_when_the_command_is_built():
    from tlcore.train.config import add_config_args

    with pytest.raises(TypeError, match="epoch"):
        add_config_args(argparse.ArgumentParser(), only=("epoch",))
    with pytest.raises(TypeError, match="lr"):
        add_config_args(argparse.ArgumentParser(), only=("epochs",), defaults={"lr": 0.1})
