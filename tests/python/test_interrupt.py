"""Ctrl-C stops a long training run with KeyboardInterrupt (the GIL is
released while the engine runs; the engine checks for signals between
iterations), and the module keeps working afterwards."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import numpy as np
    import flashkmeans

    x = np.random.RandomState(0).rand(20000, 16).astype(np.float32)
    km = flashkmeans.Kmeans(16, 64, niter=10**6, early_stop_threshold=-1, backend="cpu")
    ticks = []
    # a Python thread keeps running during training: the GIL is released
    threading.Thread(target=lambda: [ticks.append(time.sleep(0.01)) for _ in range(20)],
                     daemon=True).start()
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    t0 = time.time()
    try:
        km.train(x)
    except KeyboardInterrupt:
        print("INTERRUPTED", round(time.time() - t0, 2), "ticks", len(ticks), flush=True)
    else:
        print("NOT INTERRUPTED", flush=True)
        sys.exit(1)
    km2 = flashkmeans.Kmeans(16, 8, niter=3)
    km2.train(x[:1000])
    print("STILL WORKS", km2.centroids.shape, flush=True)
    """
)


def test_ctrl_c_raises_keyboard_interrupt_and_the_module_still_works():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "INTERRUPTED" in proc.stdout
    assert "STILL WORKS (8, 16)" in proc.stdout
    ticks = int(proc.stdout.split("ticks")[1].split()[0])
    assert ticks >= 10  # the other thread ran while the engine trained
