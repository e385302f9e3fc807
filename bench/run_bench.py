#!/usr/bin/env python3
"""Runs the training benchmark: kerascpp and its peers (Keras 3 on TensorFlow, PyTorch) on the
workloads W1, W2, W3, each framework and workload in its own process, and prints a markdown table.
With --device cuda it runs on the GPU instead: kerascpp (cuDNN) against PyTorch + cuDNN on the same
GPU, reporting peak device memory (the Keras peer is tensorflow-cpu, so it is left out).

Needs: the kerascpp build (`ninja -C build bench/bench_kerascpp`) and the peers' virtual environment
(scripts/install_bench_peers.sh). Uses only the standard library itself.
--build-dir takes several build directories, comma-separated, to compare builds in the same run, e.g.
oneDNN 2.6 against oneDNN 3 (scripts/build_onednn3.sh): `--build-dir build,build-onednn3
--frameworks kerascpp`. The first is "kerascpp", the others "kerascpp@DIR"; ratios are the first's.
See docs/performance.md for what is measured.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ["kerascpp", "keras", "torch"]
PEERS = ["keras", "torch"]
GPU_FRAMEWORKS = ["kerascpp", "torch"]
DEFAULT_SAMPLES = {"W1": 20000, "W2": 2560, "W3": 2560}

# (embedding dim C, recurrent units H, gates G, sequence length T) of each workload, for FLOP counts.
SHAPES = {"W1": (100, 16, 1, 130), "W2": (128, 128, 4, 200), "W3": (128, 128, 3, 200)}


def flops_per_sample(workload):
    """Forward + backward FLOPs of one sample through the RNN and the Dense head.

    Forward RNN step: 2 (C + H) G H (the input and recurrent matmuls; gate element-wise work is
    ignored). Backward: about twice the forward (gradients with respect to inputs and to weights).
    The embedding is a gather and counts nothing; Dense(1) adds 2 H forward.
    """
    c, h, g, t = SHAPES[workload]
    forward = t * 2 * (c + h) * g * h + 2 * h
    return 3 * forward


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build",
                   help="meson build directory holding bench/bench_kerascpp; several, comma-separated, "
                        "run side by side (the first is the reference)")
    p.add_argument("--venv", default=os.environ.get("BENCH_VENV", os.path.join(REPO, ".venv-bench")),
                   help="virtual environment with tensorflow-cpu and torch ($BENCH_VENV, else .venv-bench)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                   help="threads for every framework ($OMP_NUM_THREADS, else 2)")
    p.add_argument("--workloads", default="W1,W2,W3")
    p.add_argument("--frameworks", default=None,
                   help=f"default: {','.join(FRAMEWORKS)} on the CPU, {','.join(GPU_FRAMEWORKS)} on a GPU")
    p.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N for the GPU benchmark")
    p.add_argument("--torch-tf32", action="store_true",
                   help="GPU: let torch use TF32 (its cuDNN default); off by default since kerascpp is strict fp32")
    for w, n in DEFAULT_SAMPLES.items():
        p.add_argument(f"--samples-{w.lower()}", type=int, default=n, help=f"{w} samples per epoch")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    p.add_argument("--omp-wait-policy", choices=["active", "passive"], default=os.environ.get("OMP_WAIT_POLICY"),
                   help="OMP_WAIT_POLICY for every process (default: $OMP_WAIT_POLICY, else the runtime's own); "
                        "passive avoids huge slow-downs when other processes share the cores")
    p.add_argument("--torch-keep-denormals", action="store_true",
                   help="run torch with its default denormal handling (slow backward, see docs)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every (workload, framework) this many times, in interleaved rounds, and keep "
                        "the fastest: on a shared machine other processes only ever slow a run down")
    p.add_argument("--timeout", type=int, default=900, help="seconds allowed for one run")
    p.add_argument("--json", help="also write the raw JSON lines to this file")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.epochs < 1 or args.threads < 1:
        p.error("--repeat, --epochs and --threads must be positive")
    args.workloads = args.workloads.split(",")
    args.build_dirs = args.build_dir.split(",")
    on_gpu = args.device != "cpu"
    if args.frameworks is None:
        args.frameworks = ",".join(GPU_FRAMEWORKS if on_gpu else FRAMEWORKS)
    args.frameworks = args.frameworks.split(",")
    if on_gpu and "keras" in args.frameworks:
        p.error("--device cuda: the Keras peer is tensorflow-cpu; use --frameworks kerascpp,torch")
    for w in args.workloads:
        if w not in DEFAULT_SAMPLES:
            p.error(f"unknown workload {w!r}")
    for f in args.frameworks:
        if f not in FRAMEWORKS:
            p.error(f"unknown framework {f!r}")
    return args


def reproduce_command(args):
    """The full command line with every option explicit, so the run can be repeated exactly."""
    parts = [f"OMP_NUM_THREADS={args.threads}", "bench/run_bench.py",
             "--build-dir", args.build_dir, "--venv", args.venv, "--threads", str(args.threads),
             "--workloads", ",".join(args.workloads), "--frameworks", ",".join(args.frameworks)]
    if args.device != "cpu":
        parts += ["--device", args.device]
        if args.torch_tf32:
            parts.append("--torch-tf32")
    for w in DEFAULT_SAMPLES:
        parts += [f"--samples-{w.lower()}", str(getattr(args, f"samples_{w.lower()}"))]
    parts += ["--epochs", str(args.epochs), "--repeat", str(args.repeat)]
    if args.omp_wait_policy:
        parts += ["--omp-wait-policy", args.omp_wait_policy]
    if args.torch_keep_denormals:
        parts.append("--torch-keep-denormals")
    return " ".join(shlex.quote(p) for p in parts)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def run_json(cmd, args):
    """Runs one benchmark process and returns its last JSON line, or {"error": ...}."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    timeout = args.timeout
    print(f"  $ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        return {"error": f"not found: {e.filename}"}
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def kerascpp_binary(build_dir):
    return os.path.join(REPO, build_dir, "bench", "bench_kerascpp")


def runs(args):
    """The (label, framework, build directory) of each run per workload: kerascpp once per build."""
    out = []
    for f in args.frameworks:
        if f != "kerascpp":
            out.append((f, f, None))
            continue
        for i, d in enumerate(args.build_dirs):
            out.append(("kerascpp" if i == 0 else f"kerascpp@{d}", f, d))
    return out


def run_one(args, workload, framework, build_dir=None):
    samples = getattr(args, f"samples_{workload.lower()}")
    common = ["--workload", workload, "--samples", str(samples), "--epochs", str(args.epochs)]
    if args.device != "cpu":
        common += ["--device", args.device]
    if framework == "kerascpp":
        cmd = [kerascpp_binary(build_dir or args.build_dirs[0])] + common
    else:
        cmd = [os.path.join(args.venv, "bin", "python"), os.path.join(REPO, "bench", "peers.py"),
               "--framework", framework, "--threads", str(args.threads)] + common
        if args.torch_keep_denormals and framework == "torch":
            cmd.append("--no-flush-denormal")
        if args.torch_tf32 and framework == "torch":
            cmd.append("--tf32")
    result = run_json(cmd, args)
    result.setdefault("framework", framework)
    result.setdefault("workload", workload)
    return result


def best_of(old, new, key):
    """The faster of two results; a failure only stands when there is nothing better."""
    if old is None or "error" in old:
        return new
    if "error" in new or new[key] <= old[key]:
        return old
    return new


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def gpu_table(results):
    """GPU runs: speed and peak device memory (allocator bytes in use) side by side."""
    head = ("| Workload | Framework | GPU | samples/s | epoch s | peak device MB | kerascpp speed ÷ this "
            "| kerascpp device memory ÷ this | GFLOP/s |")
    rows = [head, "|" + "---|" * 9]
    by_key = {(r["workload"], r["framework"]): r for r in results}
    for r in results:
        w, f = r["workload"], r["framework"]
        if "error" in r:
            rows.append(f"| {w} | {f} | failed: {r['error']} |" + " |" * 6)
            continue
        ours = by_key.get((w, "kerascpp"))
        ok = ours is not None and "error" not in ours and f != "kerascpp"
        speed = ours["samples_per_s"] / r["samples_per_s"] if ok else None
        mem = ours["peak_device_mb"] / r["peak_device_mb"] if ok and r.get("peak_device_mb") else None
        gpu = r.get("device_name") or r.get("version", "").split(" on ")[-1]
        rows.append(f"| {w} | {f} | {gpu} | {r['samples_per_s']:.0f} | {r['epoch_s']:.3f} "
                    f"| {fmt(r.get('peak_device_mb'), '.0f')} | {fmt(speed, '.2f')} | {fmt(mem, '.2f')} "
                    f"| {r['samples_per_s'] * flops_per_sample(w) / 1e9:.1f} |")
    return "\n".join(rows)


def table(results, sgemm_gflops):
    head = ("| Workload | Framework | samples/s | epoch s | peak RSS MB | kerascpp speed ÷ this "
            "| kerascpp RSS ÷ this | GFLOP/s | % of SGEMM peak |")
    rows = [head, "|" + "---|" * 9]
    by_key = {(r["workload"], r["framework"]): r for r in results}
    for r in results:
        w, f = r["workload"], r["framework"]
        if "error" in r:
            rows.append(f"| {w} | {f} | failed: {r['error']} |" + " |" * 6)
            continue
        ours = by_key.get((w, "kerascpp"))
        ok = ours is not None and "error" not in ours
        speed = ours["samples_per_s"] / r["samples_per_s"] if ok and f != "kerascpp" else None
        rss = ours["peak_rss_mb"] / r["peak_rss_mb"] if ok and f != "kerascpp" else None
        gflops = r["samples_per_s"] * flops_per_sample(w) / 1e9
        peak = 100.0 * gflops / sgemm_gflops if sgemm_gflops else None
        rows.append(f"| {w} | {f} | {r['samples_per_s']:.0f} | {r['epoch_s']:.3f} | {r['peak_rss_mb']:.0f} "
                    f"| {fmt(speed, '.2f')} | {fmt(rss, '.2f')} | {gflops:.1f} | {fmt(peak, '.1f')} |")
    return "\n".join(rows)


def main(argv=None):
    args = parse_args(argv)
    command = reproduce_command(args)
    print(f"Command: {command}\n")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = load_average()

    sgemm = bf16_gemm = None
    results = {}
    for _ in range(args.repeat):
        # The peak is measured once per round too, and the best kept, for the same reason.
        if "kerascpp" in args.frameworks and args.device == "cpu":
            sgemm = best_of(sgemm, run_json([kerascpp_binary(args.build_dirs[0]), "--sgemm"], args),
                            "gflops")
            bf16_gemm = best_of(bf16_gemm, run_json([kerascpp_binary(args.build_dirs[0]), "--sgemm", "--gemm-dtype",
                                                     "bf16"], args), "gflops")
        for w in args.workloads:
            for label, f, build_dir in runs(args):
                result = run_one(args, w, f, build_dir)
                result["framework"] = label
                results[w, label] = best_of(results.get((w, label)), result, "samples_per_s")
    results = list(results.values())

    sgemm_gflops = sgemm.get("gflops") if sgemm else None
    load_after = load_average()
    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs; threads per framework: {args.threads}; "
          f"OMP_WAIT_POLICY {args.omp_wait_policy or 'unset'}; started {started}; 1-min load average {load_before:.2f} before, {load_after:.2f} after.")
    if max(load_before, load_after) > (os.cpu_count() or 1) + 1:
        print("WARNING: the load average exceeded the CPU count: other processes competed for the cores "
              "and the figures below are slower and noisier than this machine can do.")
    if sgemm_gflops:
        print(f"SGEMM peak (oneDNN f32 matmul {sgemm['size']}^3, best of {sgemm.get('repeats', '?')}): {sgemm_gflops:.1f} GFLOP/s "
              f"({sgemm.get('impl', '?')}).")
    elif sgemm:
        print(f"SGEMM peak: failed ({sgemm.get('error')}).")
    if bf16_gemm and bf16_gemm.get("gflops"):
        # The mixed_bfloat16 policy's ceiling (bfloat16 A and B, float32 C); a CPU without AVX512_BF16
        # runs a slow reference kernel here, and the impl says so.
        print(f"bf16 GEMM peak (oneDNN matmul, bf16 x bf16 -> f32, {bf16_gemm['size']}^3): "
              f"{bf16_gemm['gflops']:.1f} GFLOP/s ({bf16_gemm.get('impl', '?')}).")
    versions = sorted({r["version"] for r in results if "version" in r})
    print("Versions: " + "; ".join(versions))
    print(f"Samples per epoch: " + ", ".join(f"{w} {getattr(args, 'samples_' + w.lower())}" for w in args.workloads)
          + f"; {args.epochs} timed epochs after one warm-up, median epoch reported"
          + (f", fastest of {args.repeat} runs." if args.repeat > 1 else "."))
    print("GFLOP/s counts the RNN's and Dense's forward + backward matmul FLOPs (see docs/performance.md).\n")
    print(gpu_table(results) if args.device != "cpu" else table(results, sgemm_gflops))

    raw = ([sgemm] if sgemm else []) + results
    print("\nRaw results:")
    for r in raw:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w") as f:
            for r in raw:
                f.write(json.dumps(r) + "\n")
    return 1 if any("error" in r for r in raw) else 0


if __name__ == "__main__":
    sys.exit(main())
