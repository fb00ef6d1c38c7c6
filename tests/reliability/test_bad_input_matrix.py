"""Bad input for every verb of ``worldmodels``, ``planners`` and ``synth`` (issue 18, case 6 and the matrix).

Every case runs the real entry point in this process and asserts: a non-zero exit, no traceback, exactly
one ``<prog> <verb>...: error: ...`` line naming the culprit (file, key or flag), and that nothing under the
working directory (the dataset, model and encoder the cases point at included) changed and no file was
written (a new empty output directory is tolerated). The verbs come
from the command tables (:func:`verbs`), so a verb added without a case here fails
:func:`test_every_verb_has_a_case` until it gets one.
"""

from __future__ import annotations

import importlib
import shutil

import pytest
from reliability_testing import error_line, run_main, snapshot, tiny_latent_model

from planners import cli as planners_cli
from synth import cli as synth_cli
from worldmodels import cli as wm_cli
from worldmodels.encoders.conv_ae import ConvAEEncoder

MAINS = {"worldmodels": wm_cli.main, "planners": planners_cli.main, "synth": synth_cli.main}
LIGHTNING = ["--model", "worldmodels.training.latent_module.LatentWorldModelModule",
             "--data", "worldmodels.data.datamodules.FrameWindowDataModule", "--trainer.max_epochs", "1",
             "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]  # fmt: skip


def _subverbs(parser) -> list[str]:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    return []


def verbs() -> list[str]:
    """``prog verb [subverb]`` for every command the three CLIs dispatch to, read from their tables."""
    out = []
    for name, (module, _, _) in wm_cli.COMMANDS.items():
        parser = getattr(importlib.import_module(module), "_parser", None)
        subs = _subverbs(parser()) if parser is not None else []
        out += [f"worldmodels {name} {s}" for s in subs] or [f"worldmodels {name}"]
    out += [f"planners {s}" for s in _subverbs(planners_cli._parser())]
    out += [f"synth {name}" for name in synth_cli.COMMANDS]
    return out


#: verb -> [(case id, argv after the program name with {data}, {model}, {enc}, {bad_npy_data}, {tmp}
#: placeholders, text the error line must contain)]
CASES: dict[str, list[tuple[str, list[str], str]]] = {
    "worldmodels fit": [
        ("missing-dataset", ["fit", *LIGHTNING, "--data.root", "{tmp}/nope", "--model.encoder_path", "{enc}"],
         "{tmp}/nope/manifest.json: no dataset here"),
        ("missing-encoder", ["fit", *LIGHTNING, "--data.root", "{data}", "--model.encoder_path", "{tmp}/noenc"],
         "{tmp}/noenc"),
        ("config-typo", ["fit", *LIGHTNING, "--data.root", "{data}", "--model.widht", "3"], "widht"),
    ],
    "worldmodels validate": [
        ("missing-dataset", ["validate", *LIGHTNING, "--data.root", "{tmp}/nope", "--model.encoder_path", "{enc}"],
         "{tmp}/nope/manifest.json: no dataset here"),
    ],
    "worldmodels test": [
        ("missing-config", ["test", "-c", "{tmp}/nope.yaml"], "nope.yaml"),
    ],
    "worldmodels data collect": [
        ("unknown-env", ["data", "collect", "--env", "worldmodels/Nope-v0", "--policy", "random", "--episodes", "1",
                         "--out", "{tmp}/o"], "Nope"),
        ("unknown-policy", ["data", "collect", "--env", "worldmodels/Wall-v0", "--policy", "nope", "--episodes", "1",
                            "--out", "{tmp}/o"], "policy='nope'"),
        ("zero-episodes", ["data", "collect", "--env", "worldmodels/Wall-v0", "--policy", "random", "--episodes", "0",
                           "--out", "{tmp}/o"], "episodes=0 must be >= 1"),
        ("other-settings", ["data", "collect", "--env", "worldmodels/Wall-v0", "--policy", "random", "--episodes", "9",
                            "--out", "{data}", "--img-size", "32"], "{data}/manifest.json: key 'behaviour_policy'"),
    ],
    "worldmodels data info": [
        ("missing-dataset", ["data", "info", "{tmp}/nope"], "{tmp}/nope/manifest.json: no dataset here"),
        ("truncated-file", ["data", "info", "{bad_npy_data}"], "{bad_npy_data}/episodes/ep_000000/pixels.npy"),
    ],
    "worldmodels data build-d4rl": [
        ("unknown-env", ["data", "build-d4rl", "--env", "nope", "--tier", "medium", "--out", "{tmp}/o"], "nope"),
    ],
    "worldmodels data render": [
        ("truncated-npy", ["data", "render", "{bad_npy_data}", "--out", "{tmp}/x.gif"],
         "{bad_npy_data}/episodes/ep_000000/pixels.npy: key 'pixels' of episode 0 is not a readable .npy"),
        ("unknown-format", ["data", "render", "{data}", "--out", "{tmp}/x.txt"], "--out {tmp}/x.txt"),
        ("no-such-episode", ["data", "render", "{data}", "--episode", "99", "--out", "{tmp}/x.gif"], "--episode 99"),
    ],
    "worldmodels data export": [
        ("missing-dataset", ["data", "export", "{tmp}/nope", "--format", "d4rl", "--out", "{tmp}/x.hdf5"],
         "{tmp}/nope/manifest.json"),
    ],
    "worldmodels data import": [
        ("missing-file", ["data", "import", "--format", "d4rl", "{tmp}/nope.hdf5", "--out", "{tmp}/o"],
         "{tmp}/nope.hdf5: no such D4RL file"),
        ("onto-a-dataset", ["data", "import", "--format", "d4rl", "{tmp}/nope.hdf5", "--out", "{data}"],
         "{tmp}/nope.hdf5"),
    ],
    "worldmodels pretrain-encoder": [
        ("missing-dataset", ["pretrain-encoder", "--data", "{tmp}/nope", "--out", "{tmp}/o"], "{tmp}/nope"),
    ],
    "worldmodels cache-features": [
        ("missing-dataset", ["cache-features", "--data", "{tmp}/nope", "--encoder", "conv_ae", "--path", "{enc}"],
         "{tmp}/nope"),
        ("missing-encoder", ["cache-features", "--data", "{data}", "--encoder", "conv_ae", "--path", "{tmp}/noenc"],
         "{tmp}/noenc"),
    ],
    "worldmodels envs list": [("unknown-flag", ["envs", "list", "--bogus"], "--bogus")],
    "worldmodels envs rollout": [
        ("unknown-env", ["envs", "rollout", "--env", "worldmodels/Nope-v0", "--out", "{tmp}/o"], "Nope"),
        ("zero-episodes", ["envs", "rollout", "--all", "--episodes", "0", "--out", "{tmp}/o"], "--episodes"),
    ],
    "worldmodels evaluate-rollouts": [
        ("missing-model", ["evaluate-rollouts", "--model", "{tmp}/nope", "--data", "{data}"], "{tmp}/nope"),
        ("not-a-video-model", ["evaluate-rollouts", "--model", "{model}", "--data", "{data}"], "{model}"),
    ],
    "worldmodels demo": [
        ("unknown-stage", ["demo", "--out", "{tmp}/o", "--stages", "nope"], "nope"),
    ],
    "planners eval": [
        ("missing-model", ["eval", "--model", "{tmp}/nope", "--env", "worldmodels/Wall-v0", "--out", "{tmp}/o"],
         "{tmp}/nope: no such model directory"),
        ("unknown-planner", ["eval", "--model", "{model}", "--env", "worldmodels/Wall-v0", "--planner", "nope"],
         "--planner"),
        ("zero-budget", ["eval", "--model", "{model}", "--env", "worldmodels/Wall-v0", "--budget", "0"],
         "budget=0 must be >= 1"),
    ],
    "worldmodels rl": [
        ("missing-dataset", ["rl", "train", "--algo", "ravl", "--data", "{tmp}/nope", "--model", "true-dynamics",
                             "--out", "{tmp}/o"], "--data {tmp}/nope"),
        ("unknown-algo", ["rl", "train", "--algo", "nope", "--data", "{data}", "--model", "true-dynamics",
                          "--out", "{tmp}/o"], "algo='nope'"),
    ],
    "synth fit": [
        ("missing-dataset", ["fit", "--data.root", "{tmp}/nope"], "nope"),
    ],
    "synth generate": [
        ("missing-model", ["generate", "--model", "{tmp}/nope", "--num", "10", "--out", "{tmp}/o"], "{tmp}/nope"),
    ],
    "synth evaluate": [
        ("missing-model", ["evaluate", "--model", "{tmp}/nope", "--data", "{data}"], "{tmp}/nope"),
    ],
    "synth experiment": [
        ("missing-data-root", ["experiment", "--data-root", "{tmp}/nope", "--envs", "hopper", "--out", "{tmp}/o"],
         "{tmp}/nope"),
    ],
    "synth latent": [
        ("missing-dataset", ["latent", "--data", "{tmp}/nope", "--out", "{tmp}/o"], "{tmp}/nope"),
    ],
}  # fmt: skip

#: verbs that take no input that could be bad (none yet)
NO_CASE: dict[str, str] = {}


def test_every_verb_has_a_case():
    missing = [v for v in verbs() if v not in CASES and v not in NO_CASE]
    assert not missing, f"verbs without a bad-input case: {missing} (add them to CASES or NO_CASE)"


@pytest.fixture(scope="module")
def inputs(wall_data, tmp_path_factory):
    """The inputs the cases point at: a dataset, one with a truncated ``pixels.npy``, a saved model and a
    saved encoder."""
    root = tmp_path_factory.mktemp("inputs")
    shutil.copytree(wall_data, root / "data")
    shutil.copytree(wall_data, root / "bad")
    npy = root / "bad" / "episodes" / "ep_000000" / "pixels.npy"
    npy.write_bytes(npy.read_bytes()[:1000])
    tiny_latent_model(env_id="worldmodels/Wall-v0").save_pretrained(root / "model")
    ConvAEEncoder(embed_dim=8, width=8).save_pretrained(root / "enc")
    return {"data": str(root / "data"), "bad_npy_data": str(root / "bad"), "model": str(root / "model"),
            "enc": str(root / "enc"), "root": root}  # fmt: skip


PARAMS = [
    pytest.param(verb, *case, id=f"{verb} {case[0]}") for verb, cases in CASES.items() for case in cases
]


@pytest.mark.parametrize(("verb", "case", "argv", "culprit"), PARAMS)
def test_bad_input_is_one_line_naming_the_culprit_and_changes_nothing(
    verb, case, argv, culprit, inputs, tmp_path, capsys, monkeypatch
):
    if verb not in verbs():
        pytest.skip(f"{verb} is not a command here")
    monkeypatch.chdir(tmp_path)  # anything a command writes by default lands here, and is seen
    monkeypatch.delenv("WORLDMODELS_DEBUG", raising=False)
    names = {k: v for k, v in inputs.items() if k != "root"} | {"tmp": str(tmp_path)}
    argv = [a.format(**names) for a in argv]
    before = snapshot(inputs["root"]), snapshot(tmp_path)
    prog = verb.split()[0]
    code, err = run_main(MAINS[prog], argv, capsys)
    assert code not in (0, None), f"{verb} {case}: exit code {code}"
    group = verb.split()[:2]  # argparse names the group (`worldmodels envs`) for unrecognized arguments
    line = error_line(err, " ".join(group))
    assert culprit.format(**names) in line, line
    for was, now in zip(before, (snapshot(inputs["root"]), snapshot(tmp_path)), strict=True):
        assert {k: now.get(k) for k in was} == was, "a failed command changed what was there"
        new_files = [k for k in now.keys() - was.keys() if now[k][0] != "dir"]
        assert not new_files, (
            f"a failed command wrote {new_files}"
        )  # (an empty output directory is tolerated)


def test_debug_shows_the_traceback(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError):
        wm_cli.main(["data", "info", str(tmp_path / "nope"), "--debug"])
    monkeypatch.setenv("WORLDMODELS_DEBUG", "1")
    with pytest.raises(ValueError, match="budget=0"):
        planners_cli.main(
            ["eval", "--model", inputs["model"], "--env", "worldmodels/Wall-v0", "--budget", "0"]
        )
