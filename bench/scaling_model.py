#!/usr/bin/env python3
"""Data-parallel scaling on paper: bytes, ring all-reduce time and compute time per step for N workers.

Weak scaling: every worker keeps its batch b (the global batch grows with N), so its compute time per
step stays t(b) = b x (seconds per sample), measured. Per step each worker exchanges:

  dense part   every weight but the embedding, all-reduced (ring):
                 2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency
  embedding    whichever moves fewer bytes (kerascpp's rule, StrategyOptions::EmbeddingGradients::Auto):
                 the whole table all-reduced as above, or
                 the touched rows all-gathered (ring): (N-1)/N x gathered / bandwidth + (N-1) x latency,
                 gathered = N x rows x (dim + 1) x 4 bytes, rows = vocab x (1 - exp(-b T / vocab)),
                 the expected distinct tokens among b x T uniform ones (W2's random tokens).

Communication is hidden when it fits in the part of the backward pass that runs after the gradients
are ready (--overlap, a fraction of t(b); DDP's ideal is the whole backward, ~2/3 of a step). The
batch size where that happens is found by doubling b. The check: the model's time for N = 2 with
the measured bytes over shared memory (--shm-gbytes-per-s, --shm-latency-us) against the measured
all-reduce wait per step.

  python3 bench/scaling_model.py --json dist.jsonl          # bench/distributed.py's output
  python3 bench/scaling_model.py --step-s 0.5 --batch-per-worker 32 --wait-s 0.004 --bytes 5.6e6

No ML packages: the standard library only.
"""
import argparse
import json
import math
import sys

W2 = dict(vocab=20000, embed=128, seq_len=200, units=128)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="bench/distributed.py --json output: the measured numbers")
    p.add_argument("--step-s", type=float, help="measured step time of one worker of two (s)")
    p.add_argument("--wait-s", type=float, help="measured all-reduce wait per step, 2 workers (s): subtracted "
                   "from --step-s for the compute time, and checked against the model")
    p.add_argument("--bytes", type=float, help="measured bytes per step of a worker's all-reduces, 2 workers, "
                   "embedding dense (the check)")
    p.add_argument("--batch-per-worker", type=int, default=32, help="the measured run's rows per worker")
    p.add_argument("--vocab", type=int, default=W2["vocab"])
    p.add_argument("--dim", type=int, default=W2["embed"])
    p.add_argument("--tokens", type=int, default=W2["seq_len"], help="tokens per sample (T)")
    p.add_argument("--dense-bytes", type=float, help="gradient bytes of every weight but the embedding "
                   "(default: W2's LSTM(128) and Dense(1))")
    p.add_argument("--gbits-per-s", type=float, default=100.0, help="network bandwidth per worker")
    p.add_argument("--latency-us", type=float, default=5.0,
                   help="per-message latency of one ring step on the network (5 us: RDMA / tuned TCP class)")
    p.add_argument("--shm-gbytes-per-s", type=float, default=5.0,
                   help="shared-memory copy bandwidth for the N = 2 check (one core's memcpy class)")
    p.add_argument("--shm-latency-us", type=float, default=1.0)
    p.add_argument("--overlap", type=float, default=2 / 3,
                   help="fraction of a step's compute that can hide communication (the backward pass)")
    p.add_argument("--workers", default="8,64,512")
    return p.parse_args(argv)


def w2_dense_bytes(units=W2["units"], dim=W2["embed"]):
    lstm = 4 * units * (dim + units) + 4 * units
    dense = units + 1
    return 4 * (lstm + dense)


def from_json(path, args):
    """Fills step-s, wait-s, bytes and the shapes from bench/distributed.py's runs (the 'auto' one, else
    the first two-process run)."""
    runs = [json.loads(line) for line in open(path) if line.strip()]
    two = [r for r in runs if "error" not in r and r.get("distributed")]
    if not two:
        sys.exit(f"scaling_model.py: no two-process run without error in {path}")
    pick = next((r for r in two if r["distributed"]["embedding_gradients"] == "auto"), two[0])
    d = pick["distributed"]
    args.step_s = pick["epoch_s"] / pick["steps_per_epoch"]
    args.wait_s = d["allreduce_wait_s_per_step"]
    # The check against the ring all-reduce formula: the dense run, where every byte is all-reduced.
    check = next((r for r in two if r["distributed"]["embedding_gradients"] == "dense"), pick)["distributed"]
    args.check_wait_s = check["allreduce_wait_s_per_step"]
    args.bytes = check["allreduce_bytes_per_step"]
    args.batch_per_worker = pick["batch_size"] // d["workers"]
    args.vocab, args.dim, args.tokens = pick["vocab"], pick["embed"], pick["seq_len"]
    args.dense_bytes = pick["gradient_bytes"] - pick["embedding_gradient_bytes"]
    return pick


def ring_all_reduce_s(nbytes, n, bandwidth, latency):
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def ring_all_gather_s(gathered, n, bandwidth, latency):
    return (n - 1) / n * gathered / bandwidth + (n - 1) * latency


def touched_rows(b, args):
    return args.vocab * (1 - math.exp(-b * args.tokens / args.vocab))


def exchange(n, b, args, bandwidth, latency):
    """(bytes per step, seconds per step, how the embedding goes) for n workers of batch b."""
    table = args.vocab * args.dim * 4
    gathered = n * touched_rows(b, args) * (args.dim + 1) * 4
    dense_s = ring_all_reduce_s(args.dense_bytes, n, bandwidth, latency)
    if gathered < table:
        return args.dense_bytes + gathered, dense_s + ring_all_gather_s(gathered, n, bandwidth, latency), "rows"
    return args.dense_bytes + table, ring_all_reduce_s(args.dense_bytes + table, n, bandwidth, latency), "dense"


def hidden_batch(n, per_sample_s, args, bandwidth, latency):
    """The smallest power-of-two batch per worker whose communication fits in the overlapped backward."""
    b = 1
    while b <= 1 << 20:
        if exchange(n, b, args, bandwidth, latency)[1] <= args.overlap * per_sample_s * b:
            return b
        b *= 2
    return None


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    if args.json:
        from_json(args.json, args)
    if args.dense_bytes is None:
        args.dense_bytes = w2_dense_bytes()
    if args.step_s is None:
        sys.exit("scaling_model.py: give --json, or --step-s (and --wait-s, --bytes for the check)")
    b = args.batch_per_worker
    compute_s = args.step_s - (args.wait_s or 0.0)   # a step's compute: its time less the exposed wait
    per_sample = compute_s / b
    bandwidth = args.gbits_per_s * 1e9 / 8
    latency = args.latency_us * 1e-6
    print(f"Measured: step {args.step_s * 1e3:.1f} ms with {b} rows per worker, compute {compute_s * 1e3:.1f} ms "
          f"({per_sample * 1e3:.2f} ms a sample); gradient: {args.dense_bytes / 1e6:.3f} MB dense + embedding "
          f"{args.vocab} x {args.dim} ({args.vocab * args.dim * 4 / 1e6:.2f} MB), {args.tokens} tokens a sample.")
    print(f"Network: {args.gbits_per_s:g} Gb/s, {args.latency_us:g} us a ring step; overlap: {args.overlap:.2f} of "
          f"compute.\n")
    print("| workers | embedding | MB/step | all-reduce ms/step | compute ms/step | comm / compute | batch/worker hidden |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.workers.split(",")):
        nbytes, seconds, how = exchange(n, b, args, bandwidth, latency)
        hidden = hidden_batch(n, per_sample, args, bandwidth, latency)
        print(f"| {n} | {how} | {nbytes / 1e6:.2f} | {seconds * 1e3:.2f} | {compute_s * 1e3:.1f} | "
              f"{seconds / compute_s:.3f} | {hidden if hidden else '> 1M'} |")
    check_wait = getattr(args, "check_wait_s", None) or args.wait_s
    if check_wait is not None and args.bytes is not None:
        shm_bw = args.shm_gbytes_per_s * 1e9
        # Two workers: the ring is one exchange each way; the bytes are a worker's buffers as measured.
        model = ring_all_reduce_s(args.bytes, 2, shm_bw, args.shm_latency_us * 1e-6)
        print(f"\nCheck, N = 2 on shared memory ({args.shm_gbytes_per_s:g} GB/s, {args.shm_latency_us:g} us): "
              f"model {model * 1e3:.2f} ms against the measured wait {check_wait * 1e3:.2f} ms a step "
              f"for {args.bytes / 1e6:.2f} MB all-reduced (ratio {check_wait / model if model else float('nan'):.2f}; the "
              f"measured wait also holds the slower worker's lag and the exchange's copies).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
