"""The supplement's figures in one call: `make_figures` (CLI: ``tn-keras figures --out DIR``).

Every figure is written as PNG and SVG with its data beside it (CSV or JSON), and
``index.html`` shows them with captions that say what the paper shows and what was measured.
Modules: `fig_s1` (monomials of the coarse-graining tree), `fig_s4` (mnist7_taylor's
coefficients), `distillation` (Figs. S5 / S6, reference classification), `whole_model`
(class templates, order shares, decomposed examples), `report` (index.html), `config`.
"""
from __future__ import annotations

import os
import time

from typing import Optional

from tn_keras.figures.config import CLASS_NAMES
from tn_keras.figures.config import FiguresConfig
from tn_keras.utils.options import with_keywords

__all__ = ["FiguresConfig", "make_figures"]


def _data_dir(config):
    data_dir = config.data_dir or os.environ.get("TN_KERAS_DATA")
    if config.full and not data_dir:
        raise ValueError("the full set of figures needs the MNIST and CIFAR-10 datasets: pass "
                         "--data-dir (Python: data_dir=) or set TN_KERAS_DATA.")
    return data_dir


def _interpretations(folder, config, data_dir):
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.figures import whole_model

    records = []
    for spec in config.interpretations:
        dataset = zoo.info(spec.model).dataset
        x, y = datasets.load(dataset, spec.test_split, data_dir=data_dir)
        records += whole_model.make(folder, spec.model, zoo.load(spec.model, compile=False),
                                    x[:spec.test_images], y[:spec.test_images],
                                    CLASS_NAMES.get(dataset))
    return records


def make_figures(config: Optional[FiguresConfig] = None, progress=print, **keywords):
    """Write every figure of ``config`` to ``config.out``; returns the figure records.

    ``keywords`` are `FiguresConfig` fields applied over ``config``
    (`tn_keras.utils.options.with_keywords`): ``make_figures(out="figs")``.

    The folder is written under a temporary name and renamed when complete; an existing
    ``config.out`` is refused unless ``config.overwrite``.
    """
    from tn_keras.figures import distillation
    from tn_keras.figures import fig_s1
    from tn_keras.figures import fig_s4
    from tn_keras.figures import report
    from tn_keras.utils.files import atomic_directory
    from tn_keras.utils.files import check_can_write

    config = with_keywords(config, FiguresConfig, keywords, "make_figures")
    check_can_write(config.out, config.overwrite)
    data_dir = _data_dir(config)
    start = time.perf_counter()
    with atomic_directory(config.out, overwrite=config.overwrite) as folder:
        records = [fig_s1.make(folder)]
        records += fig_s4.make(folder)
        progress(f"Figs. S1, S4 done ({time.perf_counter() - start:.0f} s)")
        for spec in config.distillations:
            records += distillation.make(folder, spec, config.seed, data_dir)
            progress(f"{spec.figure} done ({time.perf_counter() - start:.0f} s)")
        records += _interpretations(folder, config, data_dir)
        progress(f"whole-model interpretation done ({time.perf_counter() - start:.0f} s)")
        from tn_keras import __version__

        summary = (f"Written by tn_keras {__version__} with `tn-keras figures` "
                   f"({'full' if config.full else 'fast'} set, seed {config.seed}) in "
                   f"{time.perf_counter() - start:.0f} s.")
        report.write_index(folder, records, summary)
    return records
