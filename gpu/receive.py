"""Unpack the results of `gpu/jobs.py` here and verify every checkpoint in them.

    python gpu/receive.py /work/.device/.../results.tar.part-* --into runs/gpu-2026-12-01

The parts are joined in name order and unpacked into a new folder (an existing one is refused:
nothing is overwritten); each run folder that holds a manifest is then read and verified
(every file's sha256, then the model deserialised) with the same code `tn_keras.zoo.load`
uses, and its test accuracies printed. A run stopped at the deadline has only its log.
"""
import argparse
import io
import os
import sys
import tarfile


def join_parts(parts):
    """The tar archive's bytes from its parts, in name order."""
    data = bytearray()
    for part in sorted(parts):
        with open(part, "rb") as f:
            data += f.read()
    return bytes(data)


def unpack(parts, into):
    """Unpacks the joined parts into the new folder ``into``; returns the run folders."""
    if os.path.exists(into):
        raise SystemExit(f"--into {into}: already exists; choose a new folder.")
    with tarfile.open(fileobj=io.BytesIO(join_parts(parts))) as tar:
        # Only plain files inside the archive's folders (no links, no absolute paths).
        tar.extractall(into, filter="data")
    return sorted(os.path.join(into, name) for name in os.listdir(into)
                  if os.path.isdir(os.path.join(into, name)))


def verify_run(folder):
    """``(name, metrics)`` of the verified checkpoint in ``folder``, or None without one."""
    from tn_keras.zoo import checkpoints

    if not os.path.isfile(os.path.join(folder, "manifest.json")):
        return None
    checkpoint = checkpoints.read_checkpoint(folder)
    checkpoints.load_verified(checkpoint, compile=False)
    return checkpoint.manifest.name, dict(checkpoint.manifest.get("metrics") or {})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="+", help="results.tar.part-NN files")
    parser.add_argument("--into", required=True, help="a new folder for the runs")
    args = parser.parse_args(argv)
    for folder in unpack(args.parts, args.into):
        verified = verify_run(folder)
        if verified is None:
            print(f"{folder}: no checkpoint (stopped or failed; see its log)")
        else:
            name, metrics = verified
            shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())
                              if k.endswith("accuracy"))
            print(f"{folder}: {name} verified; {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
