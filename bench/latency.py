#!/usr/bin/env python3
"""Inference latency side by side (issue 13 item 5): a model loaded from an .h5 file answering one
request at a time, kerascpp (predict, predict_on_batch, model(x)) against Keras 3 on TensorFlow
(model(x), predict) and PyTorch (model(x) under inference_mode), at batch 1 and 32, for the seed model
and LSTM(128). Prints p50 / p99 in milliseconds and the ratios of the peers' best p50 to kerascpp's.

Needs the kerascpp build (`ninja -C build bench/bench_latency`) and the peers' virtual environment
(scripts/install_bench_peers.sh); Keras writes the .h5 files every framework then loads.
Uses only the standard library itself. See docs/performance.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = {"seed": 6000, "lstm": 20000}
SEQ_LEN = {"seed": 130, "lstm": 200}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build")
    p.add_argument("--venv", default=os.environ.get("BENCH_VENV", os.path.join(REPO, ".venv-bench")))
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--models", default="seed,lstm")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--small-rnn", default="auto",
                   help="KERASCPP_SMALL_RNN modes to time kerascpp under, comma-separated (e.g. auto,off: "
                        "the fused small-RNN / small-batch LSTM kernels against oneDNN's primitives)")
    p.add_argument("--json", help="also write the raw JSON lines to this file")
    args = p.parse_args(argv)
    args.models = args.models.split(",")
    args.batches = [int(b) for b in args.batches.split(",")]
    args.small_rnn = args.small_rnn.split(",")
    for mode in args.small_rnn:
        if mode not in ("auto", "on", "off"):
            p.error(f"unknown --small-rnn mode {mode!r} (auto, on, off)")
    for m in args.models:
        if m not in VOCAB:
            p.error(f"unknown model {m!r} (seed, lstm)")
    return args


def run_json(cmd, threads, extra_env=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2", **(extra_env or {}))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main(argv=None):
    args = parse_args(argv)
    python = os.path.join(args.venv, "bin", "python")
    peers = [python, os.path.join(REPO, "bench", "latency_peers.py")]
    binary = os.path.join(args.build_dir, "bench", "bench_latency")
    for path, what in ((python, "the peers' Python (--venv)"), (binary, "bench_latency (--build-dir)")):
        if not os.path.exists(path):
            sys.exit(f"latency.py: {what} is missing: {path}")
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}, threads {args.threads}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            h5 = os.path.join(tmp, f"{model}.h5")
            subprocess.run(peers + ["--model", model, "--make-h5", h5], check=True,
                           env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
            for batch in args.batches:
                common = ["--batch", str(batch), "--requests", str(args.requests), "--warmup", str(args.warmup)]
                for mode in args.small_rnn:   # "auto" rows are kerascpp's; others are named by their mode
                    name = "kerascpp" if mode == "auto" else f"kerascpp (KERASCPP_SMALL_RNN={mode})"
                    rows += [dict(r, model=model, framework=name) for r in run_json(
                        [binary, "--model", h5, "--vocab", str(VOCAB[model]), "--seq-len", str(SEQ_LEN[model])] + common,
                        args.threads, {"KERASCPP_SMALL_RNN": mode})]
                rows += run_json(peers + ["--model", model, "--framework", "keras", "--h5", h5] + common, args.threads)
                rows += run_json(peers + ["--model", model, "--framework", "torch"] + common, args.threads)
    if args.json:
        with open(args.json, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    print_table(rows, args)
    return 0


def print_table(rows, args):
    print("\n| model | batch | framework | path | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['batch']} | {r['framework']} | {r['path']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    print("\n| model | batch | kerascpp best p50 | Keras best ÷ kerascpp | torch ÷ kerascpp |\n|---|---|---|---|---|")
    for model in args.models:
        for batch in args.batches:
            def best(fw):
                return min(r["p50_ms"] for r in rows if r["framework"] == fw and r["model"] == model and r["batch"] == batch)
            ours = best("kerascpp")
            print(f"| {model} | {batch} | {ours:.3f} ms | {best('keras') / ours:.1f}× | {best('torch') / ours:.1f}× |")


if __name__ == "__main__":
    sys.exit(main())
