#!/usr/bin/env python3
"""The IMDb examples beside Keras, in one run (issue 12): each kerascpp example (imdb_cnn_lstm,
imdb_transformer) and its Keras twin (bench/keras_examples/, Keras 3 on TensorFlow: the same model,
options and data, Keras's own imdb.load_data on the same imdb.npz), trained one after the other with
the same settings and thread count. Prints, and writes with --out, a markdown table: test accuracy and
epoch time of each, the time ratio, the command lines and the load average.

Epoch time is read from the verbose=2 epoch line both print ("N/N - ... - Xms/step"): steps × time
per step, which includes the validation pass on the test set in both. A smoke run (seconds):

    bench/examples_vs_keras.py --epochs 1 --num-words 2000 --maxlen 40 --limit 300

Needs the kerascpp build and a Python with tensorflow and keras (--python). Standard library only.
"""
import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["imdb_cnn_lstm", "imdb_transformer"]
STEP = re.compile(r"^\s*(\d+)/(\d+) - .*?(\d+(?:\.\d+)?)(s|ms|us)/step")
ACCURACY = re.compile(r"test accuracy: (\d\.\d+)")
UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    p.add_argument("--python", default=os.environ.get("BENCH_PYTHON", "/tmp/peervenv/bin/python"),
                   help="a Python with tensorflow and keras 3")
    p.add_argument("--data", default=os.path.normpath(os.path.join(REPO, "..", "shared", "data", "imdb", "imdb.npz")))
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                   help="CPU threads for both (each example's --threads, and OMP_NUM_THREADS)")
    p.add_argument("--examples", default=",".join(EXAMPLES))
    p.add_argument("--epochs", type=int, default=2)
    # The examples' own defaults (Keras's) unless given: a smaller run for a smoke test.
    p.add_argument("--num-words", type=int)
    p.add_argument("--maxlen", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--limit", type=int, help="only the first N training and test reviews")
    p.add_argument("--out", help="also write the table (with the command lines) to this markdown file")
    return p.parse_args(argv)


def shared_options(args):
    """The options both the example and its twin take, by the same names."""
    options = ["--data", args.data, "--epochs", str(args.epochs), "--threads", str(args.threads), "--verbose", "2"]
    for name in ("num_words", "maxlen", "batch_size", "limit"):
        if getattr(args, name) is not None:
            options += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return options


def run(cmd, threads):
    """Epoch seconds, the test accuracy and the wall time of one run, read from its output."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"examples_vs_keras.py: {shlex.join(cmd)} failed ({proc.returncode}): "
                 f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    epochs = [int(m.group(1)) * float(m.group(3)) * UNIT[m.group(4)]
              for m in map(STEP.match, proc.stdout.splitlines()) if m and m.group(1) == m.group(2)]
    accuracy = ACCURACY.search(proc.stdout)
    if accuracy is None or not epochs:
        sys.exit(f"examples_vs_keras.py: no epoch line or test accuracy in the output of {shlex.join(cmd)}:\n"
                 f"{proc.stdout[-800:]}")
    return {"epoch_s": epochs, "accuracy": float(accuracy.group(1)), "wall_s": wall}


def row(name, ours, theirs):
    """One table row: accuracies, mean epoch times and kerascpp's time over Keras's."""
    mine, keras = statistics.mean(ours["epoch_s"]), statistics.mean(theirs["epoch_s"])
    return (f"| {name} | {ours['accuracy']:.4f} | {theirs['accuracy']:.4f} | {mine:.1f} | {keras:.1f} | "
            f"{mine / keras:.2f} | {ours['wall_s']:.0f} / {theirs['wall_s']:.0f} |")


def main(argv=None):
    args = parse_args(argv)
    lines = [f"Command: `{shlex.join([sys.argv[0]] + (sys.argv[1:] if argv is None else argv))}` "
             f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
             f"{args.threads} threads each)",
             f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", "",
             "| example | kerascpp test accuracy | Keras test accuracy | kerascpp epoch (s) | Keras epoch (s) "
             "| time ratio (kerascpp / Keras) | whole runs (s) |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    commands = []
    for name in args.examples.split(","):
        ours = [os.path.join(args.build_dir, "examples", name)] + shared_options(args)
        theirs = [args.python, os.path.join(REPO, "bench", "keras_examples", f"{name}.py")] + shared_options(args)
        commands += [f"- kerascpp: `{shlex.join(ours)}`", f"- Keras: `{shlex.join(theirs)}`"]
        lines.append(row(name, run(ours, args.threads), run(theirs, args.threads)))
        print(lines[-1], flush=True)
    tail = ["", f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", "",
              f"Each run with OMP_NUM_THREADS={args.threads}; epoch time = steps × time per step of the "
              "verbose=2 epoch line (the validation pass on the test set included), the mean over epochs.", ""]
    tail += commands
    print("\n".join(tail))
    lines += tail
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
