"""One source for every training and input-pipeline choice: TrainConfig, PipelineConfig, the
CLI and the benchmarks build the same objects."""
import dataclasses
import glob
import json
import os
import re
import runpy
import shlex

import numpy as np
import pytest

from tn_keras import datasets
from tn_keras.training import TrainConfig
from tn_keras.training import backup
from tn_keras.training import config

pytestmark = pytest.mark.backend_neutral

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train_parser():
    from tn_keras.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    return sub.choices["train"]


def _action(parser, dest):
    (action,) = [a for a in parser._actions if a.dest == dest]
    return action


def test_cli_choices_and_defaults_are_the_librarys():
    p = _train_parser()
    strategy = _action(p, "strategy")
    assert (tuple(strategy.choices), strategy.default) == (config.STRATEGIES,
                                                           config.DEFAULT_STRATEGY)
    assert _action(p, "seed").default == config.DEFAULT_SEED == TrainConfig().seed
    # Every field of a run has its flag of the same name.
    flags = {a.dest for a in p._actions}
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= flags
    # The CLI's defaults are the config's defaults. The global --verbose keeps library logs;
    # it is not fit's progress display.
    from tn_keras.cli.train_command import config_from_args

    assert config_from_args(p.parse_args(["digits_taylornet"])) == TrainConfig()
    assert config_from_args(p.parse_args(["digits_taylornet", "--verbose"])) == TrainConfig()
    args = p.parse_args(["digits_taylornet", "--epochs", "3", "--seed", "2", "--resume",
                         "--strategy", "mirrored", "--model-kwargs", "width=2.0",
                         "--max-eval-examples", "60", "--tag", "t", "--out", "o",
                         "--learning-rate", "1e-3"])
    assert config_from_args(args) == TrainConfig(
        epochs=3, learning_rate=1e-3, seed=2, resume=True, strategy="mirrored",
        model_kwargs={"width": 2.0}, max_eval_examples=60, tag="t", out="o")


def test_the_training_benchmark_builds_the_same_config(monkeypatch):
    # As `python benchmarks/NAME.py` runs it: its folder first on sys.path (for _common).
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    module = runpy.run_path(os.path.join(ROOT, "benchmarks", "bench_mixed_precision.py"))
    args = module["_parse"](["--epochs", "2", "--max-train-examples", "100"])
    assert args.seed == config.DEFAULT_SEED
    assert module["_config"](args) == TrainConfig(epochs=2, max_train_examples=100, verbose=0)


def _shipped_commands():
    commands = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "saved_models", "*", "*", "manifest.json"))):
        with open(path, encoding="utf-8") as f:
            command = json.load(f).get("training", {}).get("command")
        if command:
            commands[os.path.relpath(path, ROOT)] = command
    return commands


def test_the_command_is_rendered_back_byte_for_byte():
    """CLI -> TrainConfig -> command: every shipped manifest's command, and one with every
    flag, come back as they were written (the manifests and resume rely on the bytes)."""
    from tn_keras.cli.train_command import config_from_args

    commands = _shipped_commands()
    assert len(commands) >= 5
    commands["all flags"] = (
        "tn-keras train digits_taylornet --epochs 1 --batch-size 8 --learning-rate 0.001 "
        "--seed 4 --model-kwargs "
        "'name=\"a b\"' width=1.5 --strategy data_parallel --mixed-precision "
        "--max-train-examples 64 --out 'runs/a b' --tag tuned --init-from digits_taylornet "
        "--freeze-body")
    commands["a recipe"] = ("tn-keras train cifar_taylornet --recipe cifar_smooth_lookahead "
                            "--epochs 18 --batch-size 128 --seed 0")
    parser = _train_parser()
    for where, command in commands.items():
        words = shlex.split(command)
        cfg = config_from_args(parser.parse_args(words[2:]))
        assert config.command_line(words[2], cfg) == command, where


def test_a_resolved_config_fills_in_the_recipe():
    recipe = type("Recipe", (), {"epochs": 15, "batch_size": 128})
    assert TrainConfig().with_recipe(recipe) == TrainConfig(epochs=15, batch_size=128)
    assert TrainConfig(epochs=2).with_recipe(recipe).epochs == 2
    resolved = TrainConfig(seed=3, max_train_examples=256, out="o").with_recipe(recipe)
    assert config.command_line("m", resolved) == (
        "tn-keras train m --epochs 15 --batch-size 128 --seed 3 --max-train-examples 256 "
        "--out o")
    # What a backup records: the keys from before TrainConfig, and learning_rate, which is
    # None unless asked (a backup written before the field existed reads it as None too).
    assert backup.run_settings("m", resolved) == {
        "name": "m", "recipe": None, "epochs": 15, "batch_size": 128, "learning_rate": None, "seed": 3,
        "strategy": "default", "max_train_examples": 256, "model_kwargs": {},
        "mixed_precision": False, "init_from": None, "init_head": False,
        "freeze_body": False}
    # A learning rate given is a flag of the command and a setting --resume must repeat.
    faster = dataclasses.replace(resolved, learning_rate=5e-4)
    assert config.command_line("m", faster) == (
        "tn-keras train m --epochs 15 --batch-size 128 --learning-rate 0.0005 --seed 3 "
        "--max-train-examples 256 --out o")
    assert backup.run_settings("m", faster)["learning_rate"] == 5e-4


def test_a_backup_from_before_the_learning_rate_field_resumes(tmp_path):
    resolved = TrainConfig(epochs=2, batch_size=8, out=str(tmp_path))
    settings = backup.run_settings("m", resolved)
    del settings["learning_rate"]  # as an older run.json has it
    os.makedirs(tmp_path / backup.BACKUP_DIR)
    with open(tmp_path / backup.BACKUP_DIR / backup.RUN_FILE, "w", encoding="utf-8") as f:
        json.dump(settings, f)
    backup._check_same_settings(str(tmp_path), backup.run_settings("m", resolved))
    for field in ("recipe", "freeze_body"):  # fields added later still: their defaults
        del settings[field]
        with open(tmp_path / backup.BACKUP_DIR / backup.RUN_FILE, "w", encoding="utf-8") as f:
            json.dump(settings, f)
        backup._check_same_settings(str(tmp_path), backup.run_settings("m", resolved))
    with pytest.raises(ValueError, match=r"freeze_body=True \(the backup has False\)"):
        backup._check_same_settings(str(tmp_path), backup.run_settings(
            "m", dataclasses.replace(resolved, init_from="x", freeze_body=True)))
    with pytest.raises(ValueError, match=r"learning_rate=0\.001 \(the backup has None\)"):
        backup._check_same_settings(str(tmp_path), backup.run_settings(
            "m", dataclasses.replace(resolved, learning_rate=1e-3)))


def test_the_run_uses_the_configs_learning_rate(tmp_path):
    from tn_keras.training import trainer
    from tn_keras.zoo.registry import get_spec

    registered = get_spec("digits_taylornet").recipe
    run = trainer._Run.plan("digits_taylornet", TrainConfig(learning_rate=1e-4,
                                                            out=str(tmp_path)), ())
    assert (run.recipe.learning_rate, run.recipe.epochs) == (1e-4, registered.epochs)
    assert run.recipe.augmentation == registered.augmentation
    # The schedule peaks at that rate, after the recipe's warm-up.
    optimizer = trainer.make_optimizer(run.recipe, steps_per_epoch=10, epochs=5)
    warmup = int(registered.warmup_epochs * 10)
    schedule = optimizer.get_config()["learning_rate"]["config"]
    assert (schedule["warmup_target"], schedule["warmup_steps"]) == (pytest.approx(1e-4),
                                                                     warmup)
    default = trainer._Run.plan("digits_taylornet", TrainConfig(out=str(tmp_path)), ())
    assert default.recipe.learning_rate == registered.learning_rate


@pytest.mark.parametrize("change, match", [
    (dict(epochs=0), r"^epochs must be a positive integer; received 0\.$"),
    (dict(batch_size=2.5), "batch_size must be a positive integer; received 2.5"),
    (dict(max_train_examples=True), "max_train_examples must be a positive integer"),
    (dict(max_eval_examples=-1), "max_eval_examples must be a positive integer"),
    (dict(seed=-1), "seed must be a non-negative integer; received -1"),
    (dict(learning_rate=0), r"^learning_rate must be a positive number; received 0\.$"),
    (dict(learning_rate=float("nan")), "learning_rate must be a positive number; received nan"),
    (dict(learning_rate="1e-3"), "learning_rate must be a positive number; received '1e-3'"),
    (dict(strategy="tpu"), "strategy must be one of 'default', 'mirrored', 'multiworker', "
                           "'data_parallel'; received 'tpu'"),
    (dict(resume=True, overwrite=True), "resume=True and overwrite=True contradict"),
    (dict(resume="yes"), "resume must be True or False; received 'yes'"),
    (dict(verbose=3), "verbose must be one of"),
    (dict(model_kwargs=["width"]), "model_kwargs must be a dict"),
    (dict(model_kwargs={"width": object()}), r"model_kwargs\['width'\] = .* is not a JSON"),
    (dict(out=""), "out must be a non-empty string"),
    (dict(tag=3), "tag must be a non-empty string; received 3"),
])
def test_bad_values_name_the_field(change, match):
    with pytest.raises(ValueError, match=match) as error:
        TrainConfig(**change)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=match):  # keyword overrides are checked the same way
        dataclasses.replace(TrainConfig(), **change)


def test_values_are_normalised():
    cfg = TrainConfig(strategy=None, epochs=np.int64(3), out=type(
        "P", (os.PathLike,), {"__fspath__": lambda self: "runs/x"})())
    assert (cfg.strategy, cfg.epochs, type(cfg.epochs), cfg.out) == ("default", 3, int,
                                                                     "runs/x")
    kwargs = {"width": 2.0}
    cfg = TrainConfig(model_kwargs=kwargs)
    kwargs["width"] = 3.0  # the config holds its own copy
    assert cfg.model_kwargs == {"width": 2.0} and TrainConfig().model_kwargs == {}


def test_train_refuses_unknown_keywords_and_a_positional_epoch():
    from tn_keras.training import train

    with pytest.raises(TypeError, match=r"train\(\) got an unexpected keyword argument 'epoch';"
                                        r" known: batch_size, data_dir, epochs, "):
        train("digits_taylornet", epoch=1)
    with pytest.raises(TypeError, match="takes a TrainConfig as its config; got 5"):
        train("digits_taylornet", 5)


@pytest.mark.slow  # a training run: about 10 s here
def test_train_takes_a_config_and_keywords_override_it(tmp_path):
    from tn_keras.training import train

    base = TrainConfig(epochs=3, max_train_examples=32, max_eval_examples=20, verbose=0)
    out = str(tmp_path / "run")
    # Keywords replace the config's fields: one epoch, not three.
    _, manifest = train("digits_taylornet", base, epochs=1, out=out)
    assert manifest["training"]["epochs"] == 1
    # The manifest's recipe is the recipe as run, not the registry's defaults.
    assert manifest["training"]["recipe"]["epochs"] == 1
    assert manifest["training"]["recipe"]["batch_size"] == 32
    assert manifest["training"]["command"] == (
        f"tn-keras train digits_taylornet --epochs 1 --batch-size 32 --seed 0 "
        f"--max-train-examples 32 --out {out}")
    assert manifest["metrics"]["test_examples"] == 20
    # The same run resumed from the config alone finds the finished checkpoint.
    _, again = train("digits_taylornet", dataclasses.replace(base, epochs=1, out=out,
                                                             resume=True))
    assert again["sha256"] == manifest["sha256"]


# ---------------------------------------------------------------- the input pipeline
def _arrays(n=20):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int64))


def _batches(ds):
    import keras

    if isinstance(ds, keras.utils.PyDataset):
        return ds.epoch_batches(0)
    return [(np.asarray(a), np.asarray(b)) for a, b in ds]


@pytest.mark.parametrize("pipeline", ["numpy", "tf.data"])
def test_make_dataset_takes_options_or_keywords(pipeline):
    if pipeline == "tf.data":
        pytest.importorskip("tensorflow")
    x, y = _arrays()
    options = datasets.PipelineConfig(augment="translate", seed=5, dataset_name="digits",
                                      drop_remainder=True, pipeline=pipeline)
    by_options = _batches(datasets.make_dataset(x, y, 6, training=True, options=options))
    by_keywords = _batches(datasets.make_dataset(
        x, y, 6, training=True, augment="translate", seed=5, dataset_name="digits",
        drop_remainder=True, pipeline=pipeline))
    # Keywords override the options: another seed, other batches.
    reseeded = _batches(datasets.make_dataset(x, y, 6, training=True, options=options,
                                              seed=6))
    assert len(by_options) == len(by_keywords) == 3  # 20 // 6, the remainder dropped
    for (xa, ya), (xb, yb) in zip(by_options, by_keywords):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(by_options, reseeded))


def test_pipeline_options_resolve_the_calls_defaults():
    resolved = datasets.PipelineConfig(dataset_name="cifar10").resolved(training=True)
    assert (resolved.augment, resolved.deterministic, resolved.seed) == (True, False, None)
    assert resolved.pipeline == datasets.pipeline.default_pipeline()
    resolved = datasets.PipelineConfig(deterministic=True).resolved(training=False)
    assert (resolved.augment, resolved.deterministic, resolved.seed) == (False, True, 0)
    assert datasets.PipelineConfig(seed=2).resolved(False).deterministic is True


@pytest.mark.parametrize("change, match", [
    (dict(augment="rotate"), "augment.*Received augment='rotate'"),
    (dict(augment=True, dataset_name="digits"), "augment=True is not supported for "
                                                "dataset_name='digits'"),
    (dict(normalize=True), "normalize=True needs dataset_name"),
    (dict(pipeline="grain"), "pipeline.*Received pipeline='grain'"),
    (dict(workers=0), "workers must be a positive integer or None; received 0"),
    (dict(shuffle_buffer=1.5), "shuffle_buffer must be a positive integer"),
    (dict(dataset_name="svhn"), "svhn"),
])
def test_bad_pipeline_options_name_the_field(change, match):
    with pytest.raises(ValueError, match=match) as error:
        datasets.PipelineConfig(**change)
    assert "\n" not in str(error.value)


def test_make_dataset_refuses_unknown_keywords():
    x, y = _arrays()
    with pytest.raises(TypeError, match=r"make_dataset\(\) got an unexpected keyword argument "
                                        r"'seeds'; known: augment, dataset_name, "):
        datasets.make_dataset(x, y, 4, seeds=1)


def _python_blocks(path):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


@pytest.mark.slow  # a training run: about 10 s here
def test_the_training_docs_python_runs(tmp_path, monkeypatch):
    blocks = _python_blocks(os.path.join(ROOT, "docs", "training.md"))
    assert blocks, "docs/training.md shows how to use TrainConfig"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "docs/training.md", "exec"), {})


def test_a_named_recipe_replaces_the_architectures_own(tmp_path):
    from tn_keras import zoo
    from tn_keras.training import trainer

    run = trainer._Run.plan("digits_taylornet", TrainConfig(recipe="mnist7",
                                                            out=str(tmp_path)), ())
    mnist7 = zoo.get_recipe("mnist7")
    assert run.recipe == mnist7  # its epochs, batch size and rate too
    assert (run.config.epochs, run.config.batch_size) == (mnist7.epochs, mnist7.batch_size)
    assert config.command_line("digits_taylornet", run.config).startswith(
        "tn-keras train digits_taylornet --recipe mnist7 --epochs 20 --batch-size 128")
    # A resumed run must name the same recipe; a backup from before the field reads None.
    assert backup.run_settings("digits_taylornet", run.config)["recipe"] == "mnist7"
    with pytest.raises(ValueError, match=r"^Unknown recipe 'cifr'\. Did you mean: cifar"):
        trainer._Run.plan("digits_taylornet", TrainConfig(recipe="cifr", out=str(tmp_path)), ())
    with pytest.raises(ValueError, match=r"^recipe must be a non-empty string"):
        TrainConfig(recipe="")


def test_recipes_register_once_and_as_recipes():
    from tn_keras import zoo
    from tn_keras.zoo import registry

    # Every architecture's own recipe is registered, so `--recipe` can name any of them.
    for name in zoo.list_models():
        assert registry.recipe_name(registry.get_spec(name).recipe) is not None, name
    with pytest.raises(ValueError, match=r"^A recipe name must be a new non-empty string; "
                                         r"received 'cifar'"):
        zoo.register_recipe("cifar", zoo.TrainingRecipe(epochs=1))
    with pytest.raises(ValueError, match=r"^recipe must be a TrainingRecipe; received dict"):
        zoo.register_recipe("new", {"epochs": 1})
    assert "new" not in zoo.recipe_names()


def test_cli_lists_the_recipes(capsys):
    from tn_keras.cli import main

    main(["list", "--recipes", "cifar*"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["cifar", "cifar_res", "cifar_res_teacher",
                                                      "cifar_smooth_lookahead", "cifar_teacher"]
    assert "teacher='cifar_convnet_fast_gelu.e10'" in lines[2]
    assert "label_smoothing=0.2" in lines[3] and "lookahead=True" in lines[3]
    assert "teacher='cifar_convnet_fast_gelu.e10'" in lines[4]
