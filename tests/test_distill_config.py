"""One source for every distillation choice: the config objects, the CLI and the benchmarks."""
import dataclasses
import importlib.util
import os

import numpy as np
import pytest

from tn_keras import distill as D
from tn_keras.distill import config
from tn_keras.distill import evaluation

pytestmark = pytest.mark.backend_neutral

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _choices(parser, dest):
    (action,) = [a for a in parser._actions if a.dest == dest]
    return tuple(action.choices) if action.choices else None, action.default


def _distill_parser():
    from tn_keras.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    return sub.choices["distill"]


def test_cli_choices_and_defaults_are_the_librarys():
    p = _distill_parser()
    assert _choices(p, "method") == (tuple(config.METHODS), config.DEFAULT_METHOD)
    (method,) = [a for a in p._actions if a.dest == "method"]  # its help is the registry's
    assert all(f"{m.name}: {m.help}" in method.help for m in config.METHODS.values())
    assert _choices(p, "match_against") == (config.MATCH_AGAINST, None)
    assert config.MATCH_AGAINST == ("previous", "level0", "class")
    assert _choices(p, "embedding_network") == (config.EMBEDDING_NETWORKS, None)
    assert config.EMBEDDING_NETWORKS == ("convnet3", "small")
    assert _choices(p, "real_batch") == (None, None)
    assert _choices(p, "dsa") == (None, None)
    assert _choices(p, "init") == (config.INIT_MODES, None)
    assert _choices(p, "group_size")[1] == config.DEFAULT_GROUP_SIZE == 2
    assert _choices(p, "ce_weight")[1] == config.DEFAULT_CE_WEIGHT == 0.1
    assert _choices(p, "embedding_layer")[1] == config.DEFAULT_EMBEDDING_LAYER
    # The CLI builds the library's settings object, with the library's defaults.
    from tn_keras.cli.distill_command import settings_from_args

    args = p.parse_args(["mnist_taylornet", "--levels", "3", "--out", "o"])
    assert settings_from_args(args).resolved() == D.DistillConfig(levels=3).resolved()
    dm = p.parse_args(["mnist_taylornet", "--levels", "3", "--out", "o", "--method", "dm",
                       "--embedding-network", "small", "--real-batch", "32", "--no-dsa"])
    assert settings_from_args(dm).resolved() == D.DistillConfig(
        levels=3, method="dm", embedding_network="small", real_batch=32, dsa=False).resolved()


def _benchmark_parser(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks",
                                                                     f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_choices_are_the_librarys():
    module = _benchmark_parser("eval_distill")
    args = module._parse(["--export", "e", "--json", "j"])
    assert (args.method, args.match_against, args.evaluator) == (
        config.DEFAULT_METHOD, None, config.EVALUATORS[0])
    args = module._parse(["--export", "e", "--json", "j", "--method", "dm", "--no-dsa",
                          "--embedding-network", "small", "--match-against", "class"])
    assert (args.method, args.dsa, args.embedding_network, args.match_against) == (
        "dm", False, "small", "class")
    assert tuple(evaluation.PROTOCOLS) == config.EVALUATORS == ("small", "convnet3")
    with pytest.raises(SystemExit):
        module._parse(["--export", "e", "--json", "j", "--evaluator", "resnet"])


def test_settings_resolve_the_methods_defaults():
    embedding = D.DistillConfig().resolved()
    assert (embedding.steps, embedding.learning_rate, embedding.init) == (40, 0.25, "mean")
    assert (embedding.group_size, embedding.ce_weight, embedding.method) == (2, 0.1, "embedding")
    dm = D.DistillConfig(method="distribution").resolved()
    assert (dm.steps, dm.learning_rate, dm.init) == (200, 2.55, "first")
    assert dm.as_dict()["algorithm"] == "distribution-matching/v1"
    assert dm.match_against == "previous"
    # "dm": the published settings (Zhao & Bilen 2023, main_DM.py).
    full = D.DistillConfig(method="dm").resolved()
    assert (full.steps, full.learning_rate, full.init, full.match_against) == (
        20000, 1.0, "first", "class")
    assert (full.embedding_network, full.real_batch, full.dsa) == ("convnet3", 256, True)
    assert full.as_dict()["algorithm"] == "distribution-matching-full/v1"
    assert {"embedding_network", "real_batch", "dsa"} <= set(full.as_dict())
    # dm matches random ConvNets: the embedding method's fields say nothing of its images.
    assert not {"ce_weight", "embedding_layer"} & set(full.as_dict())
    # Keras's Adam changed the embedding method's images slightly: a new id, so resume does
    # not mix levels of the two implementations.
    assert embedding.as_dict()["algorithm"] == "embedding-matching/v2"
    # The manifest's record: what changes the images, not how many levels or chunks.
    assert set(embedding.as_dict()) == {"group_size", "steps", "learning_rate", "ce_weight",
                                        "embedding_layer", "per_class", "seed", "init",
                                        "method", "match_against", "algorithm"}


@pytest.mark.parametrize("change, match", [
    (dict(method="gradient"), "method must be one of 'embedding', 'distribution', 'dm'"),
    (dict(init="zeros"), "init must be one of 'mean', 'first'; got 'zeros'"),
    (dict(match_against="real"),
     "match_against must be one of 'previous', 'level0', 'class'; got 'real'"),
    (dict(match_against="class"), "match_against='class' needs method 'distribution' or"),
    (dict(real_batch=8), "real_batch apply to method='dm' only; got method='embedding'"),
    (dict(method="distribution", dsa=True, embedding_network="small"),
     "embedding_network, dsa apply to method='dm' only"),
    (dict(method="dm", embedding_network="resnet"),
     "embedding_network must be one of 'convnet3', 'small'; got 'resnet'"),
    (dict(method="dm", real_batch=0), "real_batch must be a positive integer; got 0"),
    (dict(steps=-1), "steps must be >= 0"),
    (dict(steps=1e20), r"steps=1e\+20: expected a whole number of steps from 0 to 10,000,000"),
    (dict(steps=float("inf")), "steps=inf: expected a whole number"),
    (dict(steps=2.5), "steps=2.5: expected a whole number"),
    (dict(chunk_size=0), "chunk_size must be a positive integer"),
])
def test_bad_settings_name_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(D.DistillConfig(), **change).resolved()


def test_keywords_and_config_objects_are_the_same_call():
    x = np.random.default_rng(0).uniform(0, 255, (8, 4, 4, 1)).astype(np.uint8)
    y = np.repeat([0, 1], 4)
    settings, export = D.algorithm.configure(
        2, group_size=2, steps=3, export_dir="out", source={"dataset": "d"}, resume=True)
    assert settings == D.DistillConfig(levels=2, steps=3).resolved()
    assert export == D.LevelExportConfig(directory="out", dataset={"dataset": "d"}, resume=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'step'"):
        D.distill(None, x, y, 1, step=3)
    with pytest.raises(ValueError, match="at most one of resume=True and overwrite=True"):
        D.distill(None, x, y, export=D.LevelExportConfig(resume=True, overwrite=True))


def test_no_circular_import_between_the_methods():
    # Both methods take their constants from config; neither imports the level loop.
    for name in ("embedding_matching", "distribution_matching", "class_matching"):
        with open(os.path.join(ROOT, "tn_keras", "distill", f"{name}.py")) as f:
            assert "tn_keras.distill.algorithm" not in f.read()


def test_importing_distill_does_not_import_tensorflow():
    from _no_tensorflow import stdout_without_tensorflow

    stdout = stdout_without_tensorflow(
        "import sys\n"
        "import tn_keras.distill, tn_keras.distill.evaluation, tn_keras.cli.distill_command\n"
        "import tn_keras.distill.class_matching, tn_keras.distill.cross_architecture\n"
        "import tn_keras.cli.distill_eval_command\n"
        "print('tensorflow' in sys.modules)\n", backend="jax")
    assert stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("field,value", [("steps", 0), ("steps", 2.5), ("steps", True),
                                         ("learning_rate", 0.0), ("learning_rate", float("nan")),
                                         ("learning_rate", float("inf"))])
def test_scratch_training_config_names_a_bad_field(field, value):
    from tn_keras.distill.evaluation import ScratchTrainingConfig

    with pytest.raises(ValueError, match=rf"^{field}="):
        ScratchTrainingConfig(**{field: value})
