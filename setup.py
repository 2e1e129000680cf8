"""Packaging for tn_keras.

Layout on disk -> import names (see README "Project layout"):
  tn_keras/      -> tn_keras            the library (layers, datasets, export, distill, CLI)
  zoo/           -> tn_keras.zoo        the model registry and the architectures
  saved_models/  -> tn_keras.saved_models  shipped checkpoints, one folder per arch/tag
  saved_datasets/ -> tn_keras.saved_datasets  shipped distilled datasets, one folder per cascade
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, "tn_keras", "version.py"), encoding="utf-8") as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


packages = find_packages(include=["tn_keras", "tn_keras.*"])
packages += ["tn_keras.zoo"] + [
    "tn_keras.zoo." + p for p in find_packages(where="zoo")
]
packages += ["tn_keras.saved_models", "tn_keras.saved_datasets"]

# ONNX export: tf2onnx is the converter Keras itself uses under TensorFlow; onnxruntime runs the
# parity check and the exported files.
ONNX = ["onnx>=1.16", "onnxruntime>=1.18", "tf2onnx>=1.17"]

setup(
    name="tn_keras",
    version=read_version(),
    description=(
        "Coarse-grained polynomial networks (TaylorNet) and multi-level dataset "
        "distillation for Keras 3"
    ),
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=packages,
    package_dir={
        "tn_keras": "tn_keras",
        "tn_keras.zoo": "zoo",
        "tn_keras.saved_models": "saved_models",
        "tn_keras.saved_datasets": "saved_datasets",
    },
    # Shipped checkpoints: saved_models/<arch>/<tag>/{<arch>.keras, manifest.json,
    # training_log.csv, README.md (the generated model card)}.
    package_data={# The zoo's architectures as data, for the commands that answer without Keras.
                  "tn_keras.zoo": ["catalogue.json"],
                  "tn_keras.saved_models": ["*/*/*.keras", "*/*/*.json", "*/*/*.csv",
                                            "*/*/*.md"],
                  # Distilled sets: saved_datasets/<cascade>/{manifest.json, DATACARD.md,
                  # level_<a>/{images.npz, manifest.json}}. The images are the project's
                  # products, like checkpoints: a fresh install loads every set without a
                  # data folder (tn_keras/distill/catalogue.py).
                  "tn_keras.saved_datasets": ["*/*.json", "*/*.md", "*/*/*.npz",
                                              "*/*/*.json"]},
    include_package_data=False,
    install_requires=[
        # Below the next major version: resume and export rely on Keras 3 behaviour (a callback
        # setting the initial epoch, `keras.saving`), which a major release may change.
        "keras>=3.15,<4",
        "numpy>=1.26",
        "tensorflow-datasets>=4.9",
        # scikit-learn ships the 8x8 digits inside the wheel: the offline default dataset.
        "scikit-learn>=1.3",
        # The LiteRT interpreter (the successor of tf.lite.Interpreter) runs exported models.
        "ai-edge-litert>=1.2",
        "pillow>=10",
        # Figures (tn-keras figures, the distillation's similarity plot): the field's standard.
        "matplotlib>=3.7",
        # Model cards open with YAML front matter, as the Hugging Face Hub reads them; the
        # standard YAML library writes it and `tn-keras card --check` parses it back (a
        # hand-rolled writer would get quoting wrong, and could not check anything).
        "pyyaml>=6",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu==2.21.0"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        # The test suite checks the ONNX exports too, so it needs the [onnx] extra's packages.
        # pytest-xdist runs it in two processes (pytest.ini): much of a test's time is a child
        # process importing TensorFlow or a single-threaded Python loop, which one core serves
        # while the other trains.
        "test": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", *ONNX],
        "onnx": ONNX,
        # Other Keras backends: everything but `export` runs on them without TensorFlow.
        "jax": ["jax[cpu]>=0.4.36"],
        "jax-cuda": ["jax[cuda12]>=0.4.36"],
        "torch": ["torch>=2.4"],
    },
    # The console script is a module outside the package: it quiets TensorFlow before the
    # package (which imports Keras and TensorFlow) is imported.
    py_modules=["tn_keras_cli"],
    entry_points={"console_scripts": ["tn-keras=tn_keras_cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
