"""The top-level command dispatchers: help, unknown commands, lazy sub-command modules."""

import importlib

import pytest

from synth import cli as synth_cli
from worldmodels import cli as wm_cli


def test_help_lists_every_command(capsys):
    assert wm_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in wm_cli.COMMANDS:
        assert name in out


def test_unknown_command_names_it_and_the_choices(capsys):
    assert wm_cli.main(["fitt"]) == 2
    err = capsys.readouterr().err
    assert "'fitt'" in err and "fit" in err


@pytest.mark.parametrize("name", sorted(wm_cli.COMMANDS))
def test_every_command_target_exists(name):
    module, func, _ = wm_cli.COMMANDS[name]
    assert callable(getattr(importlib.import_module(module), func))


def test_synth_help_and_unknown(capsys):
    assert synth_cli.main([]) == 0
    assert "generate" in capsys.readouterr().out
    assert synth_cli.main(["nope"]) == 2
    assert "'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: --model, --num, --out are required
        synth_cli.main(["generate"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("name", sorted(synth_cli.COMMANDS))
def test_every_synth_command_target_exists(name):
    module, func, _ = synth_cli.COMMANDS[name]
    assert callable(getattr(importlib.import_module(module), func))
