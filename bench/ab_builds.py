#!/usr/bin/env python3
"""Before / after: the same workloads on two kerascpp builds in one run, interleaved, so the two see
the same machine. Prints the load average, each build's median samples/s and the ratio new / old.

    bench/ab_builds.py --old ../base/build --new build [--repeat 3] [--workloads W1,W2,W3]

Needs only the standard library and the two builds' bench/bench_kerascpp.
"""
import argparse
import json
import os
import statistics
import subprocess

SAMPLES = {"W1": 20000, "W2": 2560, "W3": 2560}


def run(build, workload, epochs, threads):
    exe = os.path.join(build, "bench", "bench_kerascpp")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([exe, "--workload", workload, "--samples", str(SAMPLES[workload]), "--epochs", str(epochs)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="build directory of the baseline")
    p.add_argument("--new", required=True, help="build directory of the change")
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print("| workload | old samples/s (median) | new samples/s (median) | new / old |")
    print("| --- | --- | --- | --- |")
    for w in args.workloads.split(","):
        old, new = [], []
        for _ in range(args.repeat):   # interleaved: a burst of load hits both builds alike
            old.append(run(args.old, w, args.epochs, args.threads))
            new.append(run(args.new, w, args.epochs, args.threads))
        mo, mn = statistics.median(old), statistics.median(new)
        print(f"| {w} | {mo:.0f} ({', '.join(f'{v:.0f}' for v in old)}) | {mn:.0f} ({', '.join(f'{v:.0f}' for v in new)}) "
              f"| {mn / mo:.3f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
