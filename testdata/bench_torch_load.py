#!/usr/bin/python3
"""Time torch.load of torch.save files, to set beside internal/pth's BenchmarkOpen and BenchmarkReadInto.

Usage: bench_torch_load.py [--runs N] FILE...

Each run loads the file once in a new Python process, as a program loading its weights does (in one
process, later loads reuse memory the earlier ones freed and look faster than they are). The file is
in the page cache, as in the Go benchmarks, which write these files under testdata/gen/
(vggish-bench-zip.pth, vggish-bench-legacy.pth). Prints the median wall time of torch.load over N
(default 5) runs, and how much the load raised the process's peak resident memory.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def load_once(path):
    """Loads path in this process; prints seconds and the peak-RSS increase in bytes."""
    import torchload

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    torchload.load(path)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(elapsed, (after - before) * 1024)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--once":
        return load_once(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object per file instead of a sentence")
    ap.add_argument("--threads", type=int, help="ignored (torch.load is single-threaded); accepted for the Go benchmarks")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    for path in args.files:
        size = os.path.getsize(path)
        runs = []
        for _ in range(args.runs + 1):  # the first run warms the page cache
            out = subprocess.run([sys.executable, __file__, "--once", path], check=True,
                                 capture_output=True, text=True).stdout.split()
            runs.append((float(out[0]), int(out[1])))
        median = statistics.median(t for t, _ in runs[1:])
        rss = max(r for _, r in runs[1:])
        if args.json:
            print(json.dumps({"file": path, "bytes": size, "seconds": median, "peak_rss_increase_bytes": rss}))
            continue
        print(f"torch.load {os.path.basename(path)}: {median * 1e3:.0f} ms median of {args.runs} "
              f"({size / median / 1e6:.0f} MB/s), peak RSS +{rss / 1e6:.0f} MB for a {size / 1e6:.0f} MB file")


if __name__ == "__main__":
    sys.exit(main())
