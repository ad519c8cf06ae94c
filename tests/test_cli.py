"""The command line's one convention (issue 33 item 4, issue 55 item 3), checked over every command.

Each command is one declaration, `Command(name, help, run, flags=...)` (tlcore.core.commands),
beside its work, and tlcore.cli.COMMANDS lists every one; no module registers commands or
writes an argparse flag by hand. Every flag is a settings dataclass's field: a flag that is a
RunConfig field says what the field says (help, range, choices), so nobody spells them again;
every flag has help; `--help` works for every command; and a bad command line or a value out of
a setting's range is one `error:` line and exit code 2, before any work starts."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

import pytest

from tlcore import cli
from tlcore.core import commands
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
RUNNABLE = sorted(name for name, p in COMMANDS.items() if not subcommands(p))  # 'runs' is only its actions


def one_line_error(capsys, argv: list[str]) -> str:
    """What a bad command line prints: exit code 2 and one `error:` line on stderr."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_every_command_is_declared_once_and_listed_in_one_place():
    names = [c.name for c in cli.COMMANDS]
    assert len(names) == len(set(names)), "a command listed twice"
    assert list(subcommands(cli.build_parser())) == names, "`python -m tlcore --help` lists them as COMMANDS does"
    for command in cli.COMMANDS:
        assert command.help and (command.run is None) == bool(command.actions), command.name


def test_no_module_registers_commands_or_writes_a_flag_by_hand():
    """Flags come from settings dataclasses (tlcore.core.fields.add_flags) and commands from
    tlcore.cli.COMMANDS (tlcore.core.commands): nowhere else in the engine calls argparse."""
    allowed = {ROOT / "tlcore/core/fields.py", ROOT / "tlcore/core/commands.py"}
    by_hand = re.compile(r"\b(register_cli|add_argument|add_parser|add_subparsers|ArgumentParser)\(")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "tlcore").rglob("*.py")
        if path not in allowed
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if by_hand.search(line)
    ]
    assert not found, found


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_commands_help_prints_and_exits_cleanly(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*name.split(), "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m tlcore {name}")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_flag_has_help_and_one_spelling(name):
    for action in COMMANDS[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help.strip(), (name, action.dest)
        if action.option_strings and not isinstance(action, argparse.BooleanOptionalAction):
            assert action.option_strings == ["--" + action.dest.replace("_", "-")], (name, action.option_strings)


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


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_flag_meaning_the_same_in_several_commands_says_the_same(name):
    """--threads and --seeds are made once (tlcore.core.commands); --out says where results go."""
    said = {
        "threads": "CPU threads for torch, 0 = torch's default",
        "seeds": ("how many seeds, a count: seeds 0..N-1", "which seeds, a comma-separated list"),
    }
    for action in COMMANDS[name]._actions:
        if action.dest in said:
            assert action.help.startswith(said[action.dest]), (name, action.dest, action.help)


# what a command cannot go without (a bad flag is then the only thing wrong)
REQUIRED = {
    "fill-mask": ["The cat is on the [MASK]."],
    "predict": ["--model", "m", "x.png"],
    "notebook": ["--model", "m"],
    "runs export": ["--out", "x"],
    "runs backup": ["--out", "x"],
}


@pytest.mark.parametrize("name", RUNNABLE)
def test_a_flag_that_does_not_exist_is_one_error_line(name, capsys):
    assert "--no-such-flag" in one_line_error(capsys, [*name.split(), *REQUIRED.get(name, []), "--no-such-flag"])


def test_a_command_of_actions_without_one_is_one_error_line(capsys):
    assert "ACTION" in one_line_error(capsys, ["runs"])


def bad_value(action: argparse.Action) -> str | None:
    """A word the flag must refuse: not among its choices, not a number, out of its range."""
    if isinstance(action, argparse.BooleanOptionalAction) or not action.option_strings:
        return None
    if action.choices:
        return "no-such-choice"
    if action.type in (int, float):
        return "not-a-number"
    if action.type is setting_fields.seed_list:
        return "1,two"
    return None


CHECKED_FLAGS = [
    (name, action.option_strings[0], word)
    for name in RUNNABLE
    for action in COMMANDS[name]._actions
    if (word := bad_value(action)) is not None
]


@pytest.mark.parametrize("name, flag, word", CHECKED_FLAGS, ids=[f"{n} {f}" for n, f, _ in CHECKED_FLAGS])
def test_a_bad_value_is_one_error_line_naming_the_flag(name, flag, word, capsys):
    """Every typed or chosen flag of every command refuses a bad word in parsing: nothing runs."""
    assert flag in one_line_error(capsys, [*name.split(), *REQUIRED.get(name, []), flag, word])


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
        ["feature-space", "--per-class", "0"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_a_setting_out_of_its_range_is_one_error_line_before_any_work(argv, capsys):
    assert "must be between" in one_line_error(capsys, argv)


def test_a_value_the_command_itself_refuses_is_one_error_line_and_code_2(capsys):
    """A ValueError from the command's work (here: a factor the class page does not have) is caught
    by the one `main`: its message, no traceback."""
    assert cli.main(["class-experiment", "--factor", "no_such_factor"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown factor") and err.count("\n") == 1


def test_a_commands_own_defaults_show_in_its_help_and_parse():
    """bench keeps its small defaults (resnet18, digits, 64 px) with RunConfig's help text."""
    bench = COMMANDS["bench"]
    args = bench.parse_args([])
    assert (args.backbone, args.dataset, args.per_class, args.image_size) == ("resnet18", "digits", 60, 64)
    assert "(default: resnet18)" in " ".join(bench.format_help().split())


def test_lists_and_counts_parse_to_what_the_command_uses():
    parser = cli.build_parser()
    assert parser.parse_args(["matrix", "--seeds", "0,2"]).seeds == (0, 2)
    assert parser.parse_args(["matrix"]).seeds == (0, 1, 2)  # the default reads like a typed value
    assert parser.parse_args(["text-scale", "--seeds", "2"]).seeds == 2
    assert parser.parse_args(["text-scale", "--starts", "random", "minilm"]).starts == ["random", "minilm"]
    assert parser.parse_args(["pretrain", "--no-progress"]).progress is False


def test_the_feature_view_runs_on_its_own_with_the_same_flags():
    """`python -m tlcore.explain.feature_figures` and `python -m tlcore feature-space`: one declaration."""
    from tlcore.explain import feature_figures

    alone = commands.parser_alone(feature_figures.FEATURE_SPACE, prog="python -m tlcore.explain.feature_figures")
    argv = ["--per-class", "30", "--val-per-class", "20", "--seeds", "0,1,2"]  # docs/timings.md's command
    together = vars(cli.build_parser().parse_args(["feature-space", *argv]))
    assert vars(alone.parse_args(argv)) == {k: v for k, v in together.items() if k != "command"}


def test_a_misspelt_setting_name_is_refused_when_the_command_is_built():
    def build(flags):
        commands.parser_of([commands.Command("x", "x", lambda _: 0, flags=(flags,))], prog="x", description="x")

    from tlcore.train.config import run_flags

    with pytest.raises(TypeError, match="epoch"):
        build(run_flags(only=("epoch",)))
    with pytest.raises(TypeError, match="lr"):
        build(run_flags(only=("epochs",), defaults={"lr": 0.1}))


def test_the_tasks_a_run_may_have_are_the_task_registry():
    """RunConfig's --task choices and its check read tlcore.train.tasks.TASKS, not a list of their own."""
    from tlcore.train import config, tasks

    assert config.task_names() == tuple(tasks.TASKS.names()) and {"image", "text", "mlm"} <= set(config.task_names())
    task = next(a for a in COMMANDS["finetune"]._actions if a.dest == "task")
    assert tuple(task.choices) == config.task_names()
    with pytest.raises(ValueError, match="task must be one of image, text, mlm"):
        RunConfig(task="audio")
