#!/usr/bin/env python3
"""The IMDb examples beside Keras, in one run (issue 12): each kerascpp example and the same model in
Keras 3 on TensorFlow (bench/keras_examples/), trained on the real IMDb data with the same settings,
one after the other. Prints each one's test accuracy and epoch times as a markdown table.

Epoch time is read from the verbose=2 epoch line both print ("N/N - ... - Xms/step"): steps × time
per step, which includes the validation pass on the test set in both.
Needs the kerascpp build and the peers' virtual environment (tensorflow, keras). Standard library only.
"""
import argparse
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["imdb_cnn_lstm"]
STEP = re.compile(r"^\s*(\d+)/(\d+) - .*?(\d+(?:\.\d+)?)(s|ms|us)/step")
ACCURACY = re.compile(r"test accuracy: (\d\.\d+)")
UNIT = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build")
    p.add_argument("--venv", default=os.environ.get("BENCH_VENV", os.path.join(REPO, ".venv-bench")))
    p.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data", "imdb", "imdb.npz"))
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--examples", default=",".join(EXAMPLES))
    p.add_argument("--epochs", type=int, default=2)
    return p.parse_args(argv)


def run(cmd, threads):
    """The command's output lines; epoch seconds and the test accuracy read from them."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"examples_vs_keras.py: {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    epochs = [int(m.group(1)) * float(m.group(3)) * UNIT[m.group(4)]
              for m in map(STEP.match, proc.stdout.splitlines()) if m and m.group(1) == m.group(2)]
    accuracy = ACCURACY.search(proc.stdout)
    return {"epoch_s": epochs, "accuracy": float(accuracy.group(1)) if accuracy else None, "wall_s": wall}


def main(argv=None):
    args = parse_args(argv)
    python = os.path.join(args.venv, "bin", "python")
    print(f"Command: OMP_NUM_THREADS={args.threads} bench/examples_vs_keras.py --build-dir {args.build_dir} "
          f"--venv {args.venv} --data {args.data} --epochs {args.epochs} --examples {args.examples}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = ["| example | framework | test accuracy | epoch times (s) | whole run (s) |", "|---|---|---|---|---|"]
    for name in args.examples.split(","):
        ours = [os.path.join(args.build_dir, "examples", name), "--data", args.data, "--epochs", str(args.epochs),
                "--verbose", "2"]
        theirs = [python, os.path.join(REPO, "bench", "keras_examples", f"{name}.py"), "--data", args.data,
                  "--epochs", str(args.epochs), "--threads", str(args.threads)]
        for framework, cmd in (("kerascpp", ours), ("Keras", theirs)):
            r = run(cmd, args.threads)
            acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            rows.append(f"| {name} | {framework} | {acc} | {', '.join(f'{t:.1f}' for t in r['epoch_s'])} | {r['wall_s']:.0f} |")
            print(rows[-1], flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
