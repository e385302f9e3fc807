#!/usr/bin/env python3
"""Data-parallel W2 on one machine: 1 process x 2 threads against mpirun -np 2 x 1 thread each.

Runs bench/bench_kerascpp on workload W2 (Embedding(20000, 128) -> LSTM(128) -> Dense(1), T = 200,
global batch 64) three or four times:

  1 x 2      one process, OMP_NUM_THREADS=2, no strategy
  2 x 1      mpirun -np 2 -x OMP_NUM_THREADS=1 --bind-to core, inside a MultiWorkerMirroredStrategy,
             once per way of sending the embedding's gradient: dense (all-reduced with the rest),
             rows (all-gather of the touched rows), and auto (the size rule's pick; --modes)

and prints, per run, the throughput (samples/s over the global batch), the step time, the time a
step waits for the gradients after its backward pass, the bytes a worker's collectives move per step,
and the 1-minute load average before and after the run (a busy machine makes the figures worthless).
--bind-to core pins each worker to one core (no migration between the two; --bind none to compare).
Writes a markdown table (--markdown) and the raw JSON lines (--json) that bench/scaling_model.py reads.

  ninja -C build bench/bench_kerascpp
  python3 bench/distributed.py --samples 1280 --epochs 2 --markdown dist.md --json dist.jsonl

Needs Open MPI's mpirun and a kerascpp built with MPI (-Dmpi=auto finds libopenmpi-dev). Takes
minutes at the defaults; run it on a quiet machine.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build", help="meson build directory holding bench/bench_kerascpp")
    p.add_argument("--workload", default="W2", choices=["W1", "W2", "W3"])
    p.add_argument("--samples", type=int, default=1280, help="training samples per epoch (global)")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    p.add_argument("--seq-len", type=int, help="override the workload's T (a quick smoke run)")
    p.add_argument("--modes", default="dense,rows,auto", help="embedding gradients of the 2-process runs")
    p.add_argument("--bind", default="core", choices=["core", "none"], help="mpirun --bind-to")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one run")
    p.add_argument("--markdown", help="write the table to this file too")
    p.add_argument("--json", help="write the raw JSON lines to this file")
    return p.parse_args(argv)


def load_average():
    return os.getloadavg()[0]


def mpirun_prefix(args):
    mpirun = shutil.which("mpirun")
    if not mpirun:
        sys.exit("distributed.py: mpirun not found (scripts/install_deps.sh installs openmpi-bin)")
    cmd = [mpirun, "-np", "2", "--bind-to", args.bind, "-x", "OMP_NUM_THREADS=1"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")   # containers run as root; Open MPI refuses it otherwise
    return cmd


def run(label, cmd, env, args):
    """One run: its JSON line with the label and the load averages around it, or an error."""
    before = load_average()
    print(f"  $ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=args.timeout)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            result = {"error": f"exit {proc.returncode}: {tail}"}
        else:
            result = json.loads(lines[-1])
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {args.timeout} s"}
    result.update(label=label, load_before=before, load_after=load_average())
    return result


def runs(args):
    binary = os.path.join(REPO, args.build_dir, "bench", "bench_kerascpp")
    if not os.path.exists(binary):
        sys.exit(f"distributed.py: {binary} not found (meson setup -Dbench=true; ninja -C {args.build_dir} bench/bench_kerascpp)")
    common = [binary, "--workload", args.workload, "--samples", str(args.samples), "--epochs", str(args.epochs)]
    if args.seq_len:
        common += ["--seq-len", str(args.seq_len)]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    yield run("1 process x 2 threads", common, env, args)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for mode in args.modes.split(","):
        yield run(f"2 processes x 1 thread, embedding {mode}", mpirun_prefix(args) + common + ["--distributed", mode], env,
                  args)


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def table(results):
    lines = ["| run | samples/s | step ms | all-reduce wait ms/step | bytes/step (MB) | load before / after |",
             "|---|---:|---:|---:|---:|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['label']} | {r['error']} | | | | {r['load_before']:.2f} / {r['load_after']:.2f} |")
            continue
        d = r.get("distributed") or {}
        step_ms = r["epoch_s"] / r["steps_per_epoch"] * 1e3
        wait = d.get("allreduce_wait_s_per_step")
        mb = d.get("allreduce_bytes_per_step")
        lines.append(f"| {r['label']} | {r['samples_per_s']:.1f} | {step_ms:.1f} | {fmt(wait and wait * 1e3, '.2f')} | "
                     f"{fmt(mb and mb / 1e6, '.3f')} | {r['load_before']:.2f} / {r['load_after']:.2f} |")
    first = next((r for r in results if "error" not in r), None)
    if first:
        lines.append("")
        lines.append(f"{first['workload']}, global batch {first['batch_size']}, {first['samples']} samples an epoch, "
                     f"median of the timed epochs; gradient {first['gradient_bytes'] / 1e6:.2f} MB of which the "
                     f"embedding's {first['embedding_gradient_bytes'] / 1e6:.2f} MB. {first['version']}.")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    results = []
    for r in runs(args):
        print(json.dumps(r), file=sys.stderr, flush=True)
        results.append(r)
    text = table(results)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
