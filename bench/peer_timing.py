"""The timing loop the peers share (standard library only: both Pythons,
Debian's for PyTorch and the pyenv one for TensorFlow, import it)."""
import time


def ms_per_step(step, steps, warmup=2):
    """Runs step() warmup times, then steps times; the mean ms of the latter."""
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) * 1000 / steps
