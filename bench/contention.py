#!/usr/bin/env python3
"""Throughput under CPU contention: each framework on each workload with 0, 1 and 2 busy-loop
processes competing for the cores, and its slowdown against its own quiet run.

kerascpp runs three times: with its default adaptive thread setting, with OpenMP's thread count fixed
(`--fixed-threads`, what kerascpp did before it adapted), and with its own threads at every step
(`--own-threads`, what the governor picks on a busy machine when they are faster). Uses run_bench.py's
runner and options
(--build-dir, --venv, --threads, --samples-w1.., --epochs, --repeat). See docs/performance.md.
"""
import argparse
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench  # noqa: E402


def spin():
    while True:
        pass


# kerascpp's variants beside its adaptive default: name -> bench_kerascpp's flag.
VARIANTS = {"fixed threads": "--fixed-threads", "own threads": "--own-threads"}


def run_with_busy(args, busy, workload, framework, variant):
    procs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
    for p in procs:
        p.start()
    try:
        if variant:
            # run_one builds the command; the flag goes to bench_kerascpp only.
            binary = run_bench.kerascpp_binary(args.build_dirs[0])
            samples = getattr(args, f"samples_{workload.lower()}")
            cmd = [binary, "--workload", workload, "--samples", str(samples), "--epochs", str(args.epochs),
                   VARIANTS[variant]]
            result = run_bench.run_json(cmd, args)
            result.setdefault("workload", workload)
        else:
            result = run_bench.run_one(args, workload, framework)
    finally:
        for p in procs:
            p.terminate()
            p.join()
    result["framework"] = framework + (f" ({variant})" if variant else "")
    return result


def main(argv):
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--busy", default="0,1,2", help="numbers of busy-loop processes to run beside")
    mine, rest = extra.parse_known_args(argv)
    args = run_bench.parse_args(rest)
    busy_counts = [int(b) for b in mine.busy.split(",")]
    runs = [(f, None) for f in args.frameworks]
    if "kerascpp" in args.frameworks:
        after = args.frameworks.index("kerascpp") + 1
        runs[after:after] = [("kerascpp", variant) for variant in VARIANTS]
    print(f"Machine: {run_bench.cpu_model()}, {os.cpu_count()} logical CPUs; threads per framework: "
          f"{args.threads}; 1-min load average before: {run_bench.load_average():.2f}", flush=True)
    best = {}
    for _ in range(args.repeat):
        for workload in args.workloads:
            for busy in busy_counts:
                for framework, variant in runs:
                    r = run_with_busy(args, busy, workload, framework, variant)
                    key = (workload, r["framework"], busy)
                    best[key] = run_bench.best_of(best.get(key), r, "epoch_s")
    print(f"1-min load average after: {run_bench.load_average():.2f}")
    names = [f + (f" ({variant})" if variant else "") for f, variant in runs]
    head = "| Workload | Framework | " + " | ".join(f"samples/s, {b} busy" for b in busy_counts)
    head += " | " + " | ".join(f"{b} busy ÷ quiet" for b in busy_counts if b) + " |"
    rows = [head, "|" + "---|" * (2 + len(busy_counts) + sum(1 for b in busy_counts if b))]
    for workload in args.workloads:
        for name in names:
            cells = [best[(workload, name, b)] for b in busy_counts]
            speeds = [None if "error" in c else c["samples_per_s"] for c in cells]
            quiet = speeds[0] if busy_counts[0] == 0 else None
            ratios = [run_bench.fmt(s / quiet if s and quiet else None, ".2f")
                      for b, s in zip(busy_counts, speeds) if b]
            rows.append(f"| {workload} | {name} | " + " | ".join(run_bench.fmt(s, ".0f") for s in speeds)
                        + " | " + " | ".join(ratios) + " |")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
