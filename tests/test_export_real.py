"""Quantised TFLite exports of the shipped checkpoints against Keras on real test images.

For every model with a checkpoint (``zoo.list(pretrained=True)``): full-integer (int8)
quantisation calibrated on 500 training images (the export default) must agree with the float
Keras model's top-1 on >= 99 % of the test images and lose at most 0.5 accuracy points. Models
known to be too deep for int8 activations are also held to that bar in int16x8.
"""
import os

import numpy as np
import pytest

from tn_keras import datasets
from tn_keras import zoo
from tn_keras.export import TFLiteModel
from tn_keras.export import export

PRETRAINED = zoo.list(pretrained=True)
# Checkpoints whose int8 activations compound into wrong answers even with the export's graph
# rewrites and quantile activation ranges (strict xfails: should that change, the test says so);
# each is also held to the bar in int16x8. Figures in docs/deployment.md:
# - cifar_taylornet.fig_s3, a degree-32 polynomial: about 95 %; its kd tag, the same network
#   taught by the GELU network, 94.86 % of 5,000 test images (79.24 -> 79.34 % accuracy);
# - fashion_taylornet.w15_e60: 98.91 %, and no activation quantile reaches 99 % on its test
#   images (its 30-epoch sibling w15_e30 passes with 99.02 %); so close to the bar that its
#   int8 case is held to the edge bar below instead of failing strictly.
# - cifar_convnet_fast_gelu.e10 (airbench94's GELU network): 98.44 % of 5,000 test images
#   (85.94 -> 85.80 % accuracy);
# - cifar_taylornet_res_small.b85, a degree-2048 polynomial: 95.80 % of 5,000 test images
#   (81.04 -> 80.42 % accuracy); its kd tag, the same network taught by the GELU network,
#   98.44 % of 5,000 (83.36 -> 83.38 % accuracy), and int16x8 holds it (99.40 %).
# cifar_convnet_relu left this set when the input Normalization fold and the squared-difference
# choice of the quantile came in (99.20 % of 5,000 test images, 81.72 -> 81.78 % accuracy).
INT8_KNOWN_HARD = {"cifar_taylornet.fig_s3", "cifar_taylornet.kd", "fashion_taylornet.w15_e60",
                   "cifar_convnet_fast_gelu.e10", "cifar_taylornet_res_small.b85",
                   "cifar_taylornet_res_small.kd"}
# Checkpoints that int16x8 does not rescue either (strict xfails: the float TFLite export is
# their deployment; docs/deployment.md):
# - cifar_taylornet_res_small.b85: 9.4 % top-1 agreement on 1,000 test images (chance: the
#   int16 activations of its degree-2048 blocks do not hold their range).
# - cifar_taylornet.kd: 88.0 % on 1,000 test images (80.1 -> 76.1 % accuracy), although its
#   int8 export keeps the accuracy (above).
INT16X8_FAILS = {"cifar_taylornet_res_small.b85", "cifar_taylornet.kd"}
# int16x8 runs on LiteRT's reference kernels (slow): fewer images.
MAX_TEST_IMAGES_INT16 = 1000
# Strict xfails far below the bar (more than 3 points) fail on fewer images too: at 95 %
# agreement the binomial standard deviation over 500 images is 1 point. At the full sample
# each of them costs the suite a minute or more on 2 cores. The comments above give their
# figures on the full samples, docs/deployment.md those of the suite's 500.
FAR_BELOW_BAR = {("cifar_taylornet.fig_s3", "tflite_int8"), ("cifar_taylornet.kd", "tflite_int8"),
                 ("cifar_taylornet.kd", "tflite_int16x8"),
                 ("cifar_taylornet_res_small.b85", "tflite_int8"),
                 ("cifar_taylornet_res_small.b85", "tflite_int16x8")}
MAX_TEST_IMAGES_FAR_BELOW = 500
# One image at a time through the interpreter: all test images for the small models, a fixed
# random sample of CIFAR-10's 10,000 (32x32x3 convolutions are the slow case on 2 busy cores).
# A sample, not a prefix: the offline CIFAR-10 test split is sorted by class after row 1,000.
MAX_TEST_IMAGES = {"cifar10": 5000}
SAMPLE_SEED = 0
MIN_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 0.005
# Cases whose measured figure sits within 0.2 point of a bar, on either side, with the bar
# they are held to instead. LiteRT's kernels round differently with the CPU's instruction set
# (fashion_taylornet.w15_e30's int8 agreement measured 0.9898 to 0.9901 on different x86-64
# machines), so a figure on the bar passes on one machine and fails on another, and a strict
# xfail would fail where it passes; the bars below keep a margin and still fail a clearly
# worse export. The measured figures are in docs/deployment.md.
MIN_AGREEMENT_AT_EDGE = {
    ("fashion_taylornet.w15_e30", "tflite_int8"): 0.985,  # 98.98-99.02 %
    ("fashion_taylornet.w15_e60", "tflite_int8"): 0.985,  # 98.91-98.94 %, just under the bar
    ("cifar_convnet_relu.relu_e18", "tflite_int8"): 0.985,  # 99.20 % of 5,000
}
MAX_ACCURACY_DROP_AT_EDGE = {}


def _cases():
    if not PRETRAINED:
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason="no checkpoint: zoo.list(pretrained=True) is empty (train one with "
                   "`tn-keras train NAME`, or ship it in saved_models/)"))]
    cases = []
    for name in PRETRAINED:
        marks = ()
        if name in INT8_KNOWN_HARD and (name, "tflite_int8") not in MIN_AGREEMENT_AT_EDGE:
            marks = pytest.mark.xfail(strict=True, reason="int8 top-1 agreement is below the "
                                      "99 % bar for this checkpoint (INT8_KNOWN_HARD); use "
                                      "tflite_int16x8")
        cases.append(pytest.param(name, "tflite_int8", marks=marks, id=f"{name}-int8"))
        if name in INT8_KNOWN_HARD:
            marks = (pytest.mark.xfail(strict=True, reason="int16x8 does not hold this "
                                       "checkpoint's activations either (INT16X8_FAILS)")
                     if name in INT16X8_FAILS else ())
            cases.append(pytest.param(name, "tflite_int16x8", marks=marks,
                                      id=f"{name}-int16x8"))
    return cases


def test_the_known_hard_checkpoints_are_shipped():
    # A renamed or removed tag must not leave a stale entry that silently matches nothing.
    assert INT8_KNOWN_HARD <= set(PRETRAINED) and INT16X8_FAILS <= INT8_KNOWN_HARD
    edges = set(MIN_AGREEMENT_AT_EDGE) | set(MAX_ACCURACY_DROP_AT_EDGE)
    assert {name for name, _ in edges} <= set(PRETRAINED)
    strict_xfails = {(name, "tflite_int8") for name in INT8_KNOWN_HARD} - edges
    strict_xfails |= {(name, "tflite_int16x8") for name in INT16X8_FAILS}
    assert FAR_BELOW_BAR <= strict_xfails


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("name,format", _cases())
def test_quantised_tflite_agrees_with_keras_on_real_test_images(name, format, real_data_dir,
                                                                 tmp_path):
    model = zoo.load(name, compile=False)
    dataset = zoo.info(name).dataset
    path = str(tmp_path / f"{name}_{format}.tflite")
    manifest = export(model, path, format=format, model_name=name, data_dir=real_data_dir)
    assert manifest["quantization"]["calibration"]["images_from"] == f"{dataset} train split"

    x, y = datasets.load(dataset, "test", real_data_dir)
    limit = MAX_TEST_IMAGES.get(dataset, len(x))
    if format == "tflite_int16x8":
        limit = min(limit, MAX_TEST_IMAGES_INT16)
    if (name, format) in FAR_BELOW_BAR:
        limit = min(limit, MAX_TEST_IMAGES_FAR_BELOW)
    n = min(len(x), limit)
    index = (np.arange(n) if n == len(x)
             else np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(x), n, replace=False)))
    x, y = x[index].astype(np.float32), np.asarray(y[index])
    if x.ndim == 3:
        x = x[..., None]
    keras_top1 = model.predict(x, batch_size=256, verbose=0).argmax(-1)
    quantised_top1 = TFLiteModel(path).predict(x).argmax(-1)

    agreement = float(np.mean(keras_top1 == quantised_top1))
    keras_accuracy = float(np.mean(keras_top1 == y))
    quantised_accuracy = float(np.mean(quantised_top1 == y))
    report = (f"{name} {format} on {n} {dataset} test images: top-1 agreement {agreement:.4f}, "
              f"accuracy keras {keras_accuracy:.4f} / quantised {quantised_accuracy:.4f}, file "
              f"{os.path.getsize(path):,} bytes")
    print(report)
    assert agreement >= MIN_AGREEMENT_AT_EDGE.get((name, format), MIN_AGREEMENT), report
    assert (keras_accuracy - quantised_accuracy
            <= MAX_ACCURACY_DROP_AT_EDGE.get((name, format), MAX_ACCURACY_DROP)), report
