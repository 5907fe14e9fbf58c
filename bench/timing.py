"""CUDA-event timing shared by the Python benchmarks (run as bench/<script>.py,
so bench/ is on the import path)."""
import statistics

import torch


def event_ms(fn, reps=10):
    """Median time of fn() in ms, CUDA events on the current stream, after one
    warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)
