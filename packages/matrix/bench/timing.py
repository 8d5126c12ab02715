# Timing shared by the python peers of the benchmark scripts (dense_numpy.py, dense_torch.py,
# bsr_scipy.py): two untimed calls, then repeated calls for at least min_time seconds (and at
# least 5), the fastest kept, as the TypeScript side keeps tinybench's fastest call.
import time

def fastest_time(f, min_time=0.05):
    f(); f()
    times = []
    t_end = time.perf_counter() + min_time
    while time.perf_counter() < t_end or len(times) < 5:
        t0 = time.perf_counter(); f(); times.append(time.perf_counter() - t0)
    return min(times)

def best_rate(f, flops, min_time=0.3):
    """GFLOP/s of the fastest call."""
    return flops / fastest_time(f, min_time) / 1e9
