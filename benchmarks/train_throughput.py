"""Training throughput on MNIST-1D: `load_dataset`'s tf.data pipeline against `model.fit` on numpy arrays.

Both ways train the same model (same builder, seed and batch size) in one run.
Each repeat trains one warm-up epoch, then times `EPOCHS` epochs; the two ways
alternate, and the ratio of the median samples per second is printed.
The input pipeline must never be the bottleneck: the ratio must be >= 1.0.

    python benchmarks/train_throughput.py [--repeats 5] [--epochs 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _common import machine, quiet_tensorflow

quiet_tensorflow()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import keras

    import dlimaging as dli

    data = dli.load_dataset("mnist1d", batch_size=args.batch_size, seed=0)
    x, y = data.arrays["x_train"], data.arrays["y_train"]
    x_val, y_val = data.arrays["x_validation"], data.arrays["y_validation"]

    def fresh_model():
        keras.utils.set_random_seed(0)
        return dli.build_cnn(data.input_shape, data.num_classes)

    def with_pipeline():
        model = fresh_model()
        model.fit(data.train, validation_data=data.validation, epochs=1, verbose=0, shuffle=False)
        start = time.perf_counter()
        model.fit(data.train, validation_data=data.validation, epochs=args.epochs, verbose=0, shuffle=False)
        return data.num_train * args.epochs / (time.perf_counter() - start)

    def with_numpy():
        model = fresh_model()
        model.fit(x, y, batch_size=args.batch_size, validation_data=(x_val, y_val), epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, validation_data=(x_val, y_val), epochs=args.epochs,
                  verbose=0, shuffle=True)
        return len(x) * args.epochs / (time.perf_counter() - start)

    pipeline, numpy_ = [], []
    for _ in range(args.repeats):
        pipeline.append(with_pipeline())
        numpy_.append(with_numpy())
    ratio = statistics.median(pipeline) / statistics.median(numpy_)
    print(f"machine: {machine()}")
    print(f"MNIST-1D, default build_cnn, batch {args.batch_size}, {args.epochs} timed epochs, median of {args.repeats}")
    print(f"load_dataset (tf.data): {statistics.median(pipeline):10.0f} samples/s")
    print(f"numpy arrays (fit)    : {statistics.median(numpy_):10.0f} samples/s")
    print(f"ratio: {ratio:.2f} (must be >= 1.0)")
    return 0 if ratio >= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
