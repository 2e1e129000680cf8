"""Writing a trained checkpoint (file, manifest, card) and starting a model from another one.

`tn_keras.training.train` calls `write_checkpoint` once the model is trained, and
`transfer_body` when it starts from pretrained weights (``--init-from``).
"""
import os

from tn_keras import artifacts
from tn_keras.utils.faults import fault_point
from tn_keras.utils.files import atomic_path
from tn_keras.zoo import checkpoints

LOG_NAME = "training_log.csv"
HEAD_LAYERS = ("logits", "predictions")  # the classifier after the `embedding` layer


def transfer_body(source, target, include_head=False):
    """Copy the weights of every layer of ``source`` into the layer of the same name in
    ``target``, except the classifier head (which stays freshly initialised) unless
    ``include_head`` (a conversion keeps the teacher's classifier).

    Returns the names of the layers copied. A layer present in both with other weight shapes
    (e.g. another width) is an error naming it; no shared layer at all is an error too.
    """
    copied = []
    for layer in target.layers:
        if (layer.name in HEAD_LAYERS and not include_head) or not layer.weights:
            continue
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            continue
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(w.shape) for w in other.weights]
        if want != have:
            # Named by the two models, not by a flag: a conversion copies its teacher here
            # too, and no --init-from was given then.
            raise ValueError(f"Copying weights from {source.name!r} into {target.name!r}: "
                             f"layer {layer.name!r} has weights {have} there but {want} "
                             "here; build the same architecture (e.g. the same width).")
        layer.set_weights(other.get_weights())
        copied.append(layer.name)
    if not copied:
        raise ValueError(f"Copying weights from {source.name!r} into {target.name!r}: they "
                         "share no layer name, so nothing would be copied.")
    return copied


def write_checkpoint(model, out, spec, tag, record, provenance):
    """Save ``model`` reproducibly to ``out/<arch>.keras``, then its manifest and card.

    ``record`` is the checkpoint's own part of the manifest (metrics, training); the
    architecture's facts are counted from ``model`` itself (it may have been built with
    ``model_kwargs``). Returns the `artifacts.Manifest`.
    """
    from tn_keras.zoo import api

    name = f"{spec.name}.keras"
    with atomic_path(os.path.join(out, name), overwrite=True) as tmp:
        checkpoints.save_reproducible(model, tmp)
        fault_point("checkpoint-write")  # the new file is written, not yet renamed
    facts = api.model_facts(model, spec.dataset)
    files = {name: artifacts.sha256_file(os.path.join(out, name))}
    if os.path.isfile(os.path.join(out, LOG_NAME)):
        files[LOG_NAME] = artifacts.sha256_file(os.path.join(out, LOG_NAME))
    manifest = artifacts.Manifest(
        kind="checkpoint", name=spec.name, file=name, sha256=files[name],
        size_bytes=os.path.getsize(os.path.join(out, name)), files=files,
        provenance=provenance, versions=artifacts.software_versions(),
        created=artifacts.now(),
        record=dict(
            tag=tag, dataset=spec.dataset, input_shape=list(facts["input_shape"]),
            num_classes=facts["num_classes"], class_names=list(facts["class_names"]),
            parameters=facts["parameters"],
            trainable_parameters=facts["trainable_parameters"],
            macs_per_image=facts["macs_per_image"],
            preprocessing="inside the model: raw pixels 0..255 in",
            evaluation_command=f"tn-keras evaluate {spec.name}.{tag}",
            reference=spec.reference, **record))
    artifacts.write(os.path.join(out, artifacts.MANIFEST_NAME), manifest)
    from tn_keras.zoo import cards

    cards.write_card(out, manifest)
    return manifest
