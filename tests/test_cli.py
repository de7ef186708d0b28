"""The CLI package: every command in the table has a parser and a runner; shared names in one place."""

import pytest

from melos.cli import COMMANDS, get_parser, main
from melos.evaluation.datasets import READERS


def subcommands(parser) -> dict:
    return next(a for a in parser._actions if a.dest == "command").choices


def test_every_command_has_a_parser_a_runner_and_help(capsys):
    parsers = subcommands(get_parser())
    assert list(parsers) == list(COMMANDS)  # `melos --help` lists the table's order
    for name, module in COMMANDS.items():
        assert callable(module.add_parser) and callable(module.run), name
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        assert f"usage: melos {name}" in capsys.readouterr().out


def test_dataset_names_come_from_the_readers_table():
    data = subcommands(get_parser())["data"]
    task = next(a for a in data._actions if a.dest == "data_command").choices["task"]
    assert next(a for a in task._actions if a.dest == "dataset").choices == sorted(READERS)


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "task", "gtzan", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("melos: error: ") and err.count("\n") == 1
