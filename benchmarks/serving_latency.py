"""Serving latency and throughput of an exported SavedModel against the Keras model it came from.

In one run, on the default digits CNN (with augmentation and dropout, which the
export switches off): the median latency at batch 1 and the throughput at
batch 256 of the `serving_default` signature, of the direct Keras call
`model(x, training=False)` and of `model.predict`. At batch 1 the SavedModel
must not be slower than the direct Keras call (ratio >= 1.0).

    python benchmarks/serving_latency.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from _common import machine, quiet_tensorflow

quiet_tensorflow()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import dlimaging as dli

    keras.utils.set_random_seed(0)
    model = dli.build_cnn((8, 8, 1), 10, dropout=0.2, augmentation={"rotation": 0.1})
    rng = np.random.default_rng(0)
    one = rng.uniform(0, 1, (1, 8, 8, 1)).astype("float32")
    big = rng.uniform(0, 1, (256, 8, 8, 1)).astype("float32")

    with tempfile.TemporaryDirectory() as tmp:
        path = dli.export_saved_model(model, f"{tmp}/digits")
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        one_t, big_t = tf.constant(one), tf.constant(big)
        ways = {
            "SavedModel signature": lambda x: signature(image=x)["probabilities"].numpy(),
            "model(x, training=False)": lambda x: model(x, training=False).numpy(),
            "model.predict(x)": lambda x: model.predict(x, verbose=0),
        }
        inputs = {"SavedModel signature": (one_t, big_t)}
        latency, throughput = {}, {}
        for name, fn in ways.items():
            small, large = inputs.get(name, (one, big))
            for _ in range(10):  # warm-up: tracing and caches
                fn(small)
                fn(large)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fn(small)
                times.append(time.perf_counter() - start)
            latency[name] = statistics.median(times)
            times = []
            for _ in range(max(10, args.repeats // 10)):
                start = time.perf_counter()
                fn(large)
                times.append(time.perf_counter() - start)
            throughput[name] = 256 / statistics.median(times)

    print(f"machine: {machine()}")
    print(f"{'':28}{'batch 1 latency':>18}{'batch 256 throughput':>24}")
    for name in ways:
        print(f"{name:28}{latency[name] * 1e3:15.3f} ms{throughput[name]:17.0f} samples/s")
    ratio = latency["model(x, training=False)"] / latency["SavedModel signature"]
    print(f"ratio (direct Keras call latency / SavedModel latency, batch 1): {ratio:.2f} (must be >= 1.0)")
    return 0 if ratio >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
