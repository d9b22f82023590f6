#!/usr/bin/env python3
"""The Keras peer of `tlcl bench`: keras.applications.EfficientNetV2B0 or
EfficientNetB0 (weights=None, 10 classes, 224x224 input unless SIZE says
otherwise) on the CPU, TensorFlow back-end, with THREADS intra-op threads and
1 inter-op thread; inference or one training step (forward, sparse
categorical cross-entropy, backward, Adam), random weights, random input.
Prints one line in pytorch_peer.py's format:
`keras <mode> <arch> batch B size S: X ms/step, Y img/s (...)`.
keras.applications has no EfficientNet-Lite0: that arch exits with status 5
and says so.

VARIANT (Keras's documented ways to run one batch):
  batch     model.compile(...) and model.train_on_batch / predict_on_batch
            with jit_compile=False (the default: what model.fit runs on a
            CPU-only machine, where jit_compile="auto" turns XLA off). Issue 16
            measured it faster than a hand-written tf.function step (V2-B0
            training 18-19 img/s against 13), which this script used before.
  xla       the same with jit_compile=True (XLA); the first step, which
            compiles, is timed apart and printed as "compile X s" (for
            "batch" too: it builds the tf.function graph); the img/s count
            only warm steps. A failure to compile exits 4 with the reason.

Run with a python3 that has TensorFlow (tensorflow-cpu from PyPI); without
it the script says how to install it and exits with status 3.

usage: keras_peer.py MODE(train|infer) BATCH SIZE STEPS [THREADS] [ARCH] [VARIANT]
ARCH: efficientnetv2-b0 (default) or efficientnet-b0."""
import os
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_timing import ms_per_step  # noqa: E402

NO_TF = 3
COMPILE_FAILED = 4
NO_MODEL = 5
VARIANTS = ("batch", "xla")


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in ("train", "infer"):
        sys.exit(__doc__)
    mode, batch, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    arch = sys.argv[6] if len(sys.argv) > 6 else "efficientnetv2-b0"
    variant = sys.argv[7] if len(sys.argv) > 7 else "batch"
    if variant not in VARIANTS:
        sys.exit("keras_peer.py: unknown variant %s (one of %s)" % (variant, ", ".join(VARIANTS)))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow as tf
    except ImportError:
        print("keras_peer.py: TensorFlow is not importable by %s; install it with\n"
              "  python3 -m pip install tensorflow-cpu\n"
              "(in a virtual environment or a pyenv Python: Debian's own python3 refuses pip\n"
              "installs), then run this script with that python3" % sys.executable, file=sys.stderr)
        return NO_TF
    import keras
    import numpy as np
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    apps = {"efficientnetv2-b0": keras.applications.EfficientNetV2B0,
            "efficientnet-b0": keras.applications.EfficientNetB0}
    if arch not in apps:
        print("keras_peer.py: keras.applications has no %s (only %s)" % (arch, ", ".join(apps)), file=sys.stderr)
        return NO_MODEL
    model = apps[arch](weights=None, classes=10, input_shape=(size, size, 3), classifier_activation=None)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=variant == "xla")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    y = np.zeros((batch,), dtype=np.int32)

    def step():
        if mode == "infer":
            model.predict_on_batch(x)
        else:
            model.train_on_batch(x, y)

    t0 = time.perf_counter()
    try:
        step()
    except Exception as e:  # XLA raises many kinds; report, never crash
        print("keras %s %s %s: compile FAILED: %s" % (mode, arch, variant, str(e).splitlines()[0][:300]),
              file=sys.stderr)
        return COMPILE_FAILED
    compile_s = time.perf_counter() - t0
    ms = ms_per_step(step, steps, warmup=1)
    print("keras %s %s batch %d size %d: %.1f ms/step, %.2f img/s (tensorflow %s, keras %s, %s, %d threads, "
          "compile %.1f s)" % (mode, arch, batch, size, ms, batch * 1000 / ms, tf.__version__, keras.__version__,
                               variant, threads, compile_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
