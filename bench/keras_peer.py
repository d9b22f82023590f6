#!/usr/bin/env python3
"""The Keras peer of `tlcl bench`: keras.applications.EfficientNetV2B0
(weights=None, 10 classes, 224x224 input unless SIZE says otherwise) on the
CPU, TensorFlow back-end, with THREADS intra-op threads and 1 inter-op
thread; inference or one training step (forward, sparse categorical
cross-entropy, backward, Adam) as a tf.function, random weights, random
input. Prints one line in pytorch_peer.py's format:
`keras <mode> <arch> batch B size S: X ms/step, Y img/s (...)`.
The step is a plain tf.function, not XLA: what model.fit uses on a CPU-only
machine (Keras's jit_compile="auto" turns XLA off there).

Run with a python3 that has TensorFlow (tensorflow-cpu from PyPI); without
it the script says how to install it and exits with status 3.

usage: keras_peer.py MODE(train|infer) BATCH SIZE STEPS [THREADS] [ARCH]
ARCH: efficientnetv2-b0 (default) or efficientnet-b0."""
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_timing import ms_per_step  # noqa: E402

NO_TF = 3


def main():
    if len(sys.argv) < 5 or sys.argv[1] not in ("train", "infer"):
        sys.exit(__doc__)
    mode, batch, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    arch = sys.argv[6] if len(sys.argv) > 6 else "efficientnetv2-b0"
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
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    apps = {"efficientnetv2-b0": keras.applications.EfficientNetV2B0,
            "efficientnet-b0": keras.applications.EfficientNetB0}
    if arch not in apps:
        sys.exit("keras_peer.py: unknown arch %s (one of %s)" % (arch, ", ".join(apps)))
    model = apps[arch](weights=None, classes=10, input_shape=(size, size, 3), classifier_activation=None)
    x = tf.random.uniform((batch, size, size, 3), 0, 255, dtype=tf.float32)
    y = tf.zeros((batch,), dtype=tf.int32)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    opt = keras.optimizers.Adam(learning_rate=1e-4)
    opt.build(model.trainable_variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    @tf.function
    def infer_step(x):
        return model(x, training=False)

    def step():
        if mode == "infer":
            infer_step(x).numpy()
        else:
            train_step(x, y).numpy()

    ms = ms_per_step(step, steps)
    print("keras %s %s batch %d size %d: %.1f ms/step, %.2f img/s (tensorflow %s, keras %s, %d threads)"
          % (mode, arch, batch, size, ms, batch * 1000 / ms, tf.__version__, keras.__version__, threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
