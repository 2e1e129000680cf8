# Source at the start of every call on a lent GPU machine, from the repository root:
#     source gpu/setup_device.sh
# Installs what the machine lacks (keras, namex, optree from the carried .whl/ folder), puts
# tn_keras on the path as installed (zoo/ is tn_keras.zoo), selects the JAX backend, and moves
# carried dataset shards (.carry/NAME.shards/*) into ~/data, where they stay while the machine
# is held: a dataset larger than one call can carry arrives over several calls.
set -e
if [ ! -f /tmp/site/keras/__init__.py ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
fi
rm -rf /tmp/pkg && mkdir -p /tmp/pkg
cp -r tn_keras /tmp/pkg/tn_keras && cp -r zoo /tmp/pkg/tn_keras/zoo
cp -r saved_models /tmp/pkg/tn_keras/saved_models
export PYTHONPATH=/tmp/pkg:/tmp/site KERAS_BACKEND=jax TN_KERAS_DATA="$HOME/data"
export PYTHONUNBUFFERED=1 XLA_FLAGS="--xla_gpu_deterministic_ops=true"
mkdir -p "$HOME/data"
for folder in .carry/*.shards; do
    [ -d "$folder" ] || continue
    mkdir -p "$HOME/data/$(basename "$folder")"
    cp "$folder"/* "$HOME/data/$(basename "$folder")/"
done
set +e
