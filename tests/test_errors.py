"""worldmodels.errors: a user error is one line on stderr (exit 2), a bug keeps its traceback, --debug or
WORLDMODELS_DEBUG=1 shows the traceback of a user error too."""

import subprocess
import sys

import pytest

from planners import cli as planners_cli
from synth import cli as synth_cli
from worldmodels import cli as wm_cli
from worldmodels.errors import UserError, command_name, one_line, run_command


def _raise(exc):
    def fn(argv):
        raise exc

    return fn


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("episodes=0 must be >= 1"),
        UserError("--out x: not a dataset"),
        FileNotFoundError(2, "No such file or directory", "data/missing"),
    ],
)
def test_user_error_is_one_line(exc, capsys, monkeypatch):
    monkeypatch.delenv("WORLDMODELS_DEBUG", raising=False)
    assert run_command("worldmodels", ["data", "collect", "--episodes", "0"], _raise(exc)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("worldmodels data collect: error: ")
    assert "Traceback" not in err


def test_the_message_names_the_file_of_an_oserror():
    assert "data/missing" in one_line(FileNotFoundError(2, "No such file or directory", "data/missing"))
    assert one_line(ValueError("a\nb")) == "a; b"


@pytest.mark.parametrize("exc", [KeyError("x"), TypeError("bug"), AttributeError("bug"), IndexError("bug")])
def test_a_bug_keeps_its_traceback(exc, monkeypatch):
    monkeypatch.delenv("WORLDMODELS_DEBUG", raising=False)
    with pytest.raises(type(exc)):
        run_command("worldmodels", ["demo"], _raise(exc))


def test_debug_flag_and_env_var_reraise(monkeypatch):
    monkeypatch.delenv("WORLDMODELS_DEBUG", raising=False)
    seen = []

    def fn(argv):
        seen.append(argv)
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        run_command("planners", ["eval", "--debug", "--pairs", "0"], fn)
    assert seen[-1] == ["eval", "--pairs", "0"]  # --debug is not passed on
    monkeypatch.setenv("WORLDMODELS_DEBUG", "1")
    with pytest.raises(ValueError, match="bad"):
        run_command("planners", ["eval"], fn)


def test_command_name_stops_at_options_and_paths(tmp_path):
    assert command_name("worldmodels", ["data", "collect", "--env", "x"]) == "worldmodels data collect"
    assert command_name("worldmodels", ["fit", "-c", "x.yaml"]) == "worldmodels fit"
    assert command_name("planners", ["eval", "--model", "m"], depth=1) == "planners eval"
    assert command_name("worldmodels", ["cache-features", str(tmp_path)]) == "worldmodels cache-features"


@pytest.mark.parametrize("cli", [wm_cli, planners_cli, synth_cli], ids=["worldmodels", "planners", "synth"])
def test_every_cli_main_goes_through_run_command(cli, monkeypatch):
    import worldmodels.errors

    calls = []

    def spy(prog, argv, fn, depth=2):
        calls.append(prog)
        return 0

    monkeypatch.setattr(worldmodels.errors, "run_command", spy)
    if hasattr(cli, "run_command"):
        monkeypatch.setattr(cli, "run_command", spy)
    assert cli.main(["--help"]) == 0
    assert calls == [cli.__name__.split(".")[0]]


def test_subprocess_prints_exactly_one_line(tmp_path):
    cmd = [sys.executable, "-m", "worldmodels.cli", "data", "info", str(tmp_path / "nope")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"worldmodels data info: error: {tmp_path / 'nope' / 'manifest.json'}: no dataset here (missing "
        "manifest.json)"
    )
