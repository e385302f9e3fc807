#!/usr/bin/env python3
"""How W2's training cost grows (issue 13 item 6): throughput of kerascpp and PyTorch as one of the
sequence length T (50-800), the batch size (16-256) and the LSTM's units (32-512) changes, the others
held at W2's (T = 200, batch 64, units 128). Prints a markdown table with samples/s, GFLOP/s and the
share of this machine's SGEMM peak, and writes an SVG plot of the share against each variable: a
framework is compute-bound where its line flattens near the peak, overhead-bound where it climbs.

Needs what bench/run_bench.py needs (the kerascpp build and the peers' virtual environment).
Uses only the standard library itself.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_bench  # noqa: E402  (the process runner, SGEMM peak and machine facts)

BASE = {"seq_len": 200, "batch": 64, "units": 128}
EMBED, GATES = 128, 4   # W2: Embedding(20000, 128) -> LSTM
SWEEPS = {
    "seq_len": [50, 100, 200, 400, 800],
    "batch": [16, 32, 64, 128, 256],
    "units": [32, 64, 128, 256, 512],
}
LABELS = {"seq_len": "sequence length T", "batch": "batch size", "units": "LSTM units"}
FRAMEWORKS = ["kerascpp", "torch"]
COLORS = {"kerascpp": "#1f77b4", "torch": "#d62728"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build-dir", default="build")
    p.add_argument("--venv", default=os.environ.get("BENCH_VENV", os.path.join(run_bench.REPO, ".venv-bench")))
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--seconds", type=float, default=3.0,
                   help="about how long one timed epoch takes (samples per epoch are sized from the FLOPs)")
    p.add_argument("--epochs", type=int, default=1, help="timed epochs after one warm-up epoch")
    p.add_argument("--svg", default="docs/images/cost_growth.svg")
    p.add_argument("--timeout", type=int, default=900)
    args = p.parse_args(argv)
    args.omp_wait_policy = None   # run_bench.run_json's settings
    return args


def flops_per_sample(shape):
    h, t = shape["units"], shape["seq_len"]
    return 3 * (t * 2 * (EMBED + h) * GATES * h + 2 * h)


def samples_for(shape, args):
    """Whole batches worth about args.seconds at 100 GFLOP/s, at least 4 batches."""
    per_second = 100e9 / flops_per_sample(shape)
    batches = max(4, round(per_second * args.seconds / shape["batch"]))
    return batches * shape["batch"]


def run_point(args, framework, shape):
    common = ["--workload", "W2", "--samples", str(samples_for(shape, args)), "--epochs", str(args.epochs),
              "--seq-len", str(shape["seq_len"]), "--units", str(shape["units"])]
    if framework == "kerascpp":
        cmd = [run_bench.kerascpp_binary(args.build_dir)] + common + ["--batch", str(shape["batch"])]
    else:
        cmd = [os.path.join(args.venv, "bin", "python"), os.path.join(run_bench.REPO, "bench", "peers.py"),
               "--framework", framework, "--threads", str(args.threads), "--batch-size", str(shape["batch"])] + common
    return run_bench.run_json(cmd, args)


def points():
    """(variable, shape) for every point of every sweep; W2's own shape is run once per sweep."""
    for variable, values in SWEEPS.items():
        for v in values:
            yield variable, dict(BASE, **{variable: v})


def svg_plot(results, peak, path):
    """Three panels, share of the SGEMM peak against each variable (log2 x axis)."""
    import math
    w, h, pad = 300, 240, 48
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * w}" height="{h + 30}" font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>']
    top = max([100.0 * r["gflops"] / peak for r in results.values() if r] + [10.0])
    top = math.ceil(top / 10.0) * 10.0
    for i, (variable, values) in enumerate(SWEEPS.items()):
        x0 = i * w + pad
        pw, ph = w - pad - 12, h - 2 * pad + 20
        lo, hi = math.log2(values[0]), math.log2(values[-1])
        px = lambda v: x0 + (math.log2(v) - lo) / (hi - lo) * pw
        py = lambda s: pad + ph - s / top * ph
        out.append(f'<rect x="{x0}" y="{pad}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
        out.append(f'<text x="{x0 + pw / 2}" y="{pad + ph + 30}" text-anchor="middle">{LABELS[variable]}</text>')
        for v in values:
            out.append(f'<text x="{px(v):.1f}" y="{pad + ph + 14}" text-anchor="middle">{v}</text>')
        for s in range(0, int(top) + 1, 10):
            out.append(f'<text x="{x0 - 4}" y="{py(s) + 4:.1f}" text-anchor="end">{s}</text>')
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{py(s):.1f}" y2="{py(s):.1f}" stroke="#eee"/>')
        for fw in FRAMEWORKS:
            pts = [(px(v), py(100.0 * results[fw, variable, v]["gflops"] / peak)) for v in values
                   if results.get((fw, variable, v))]
            if pts:
                out.append(f'<polyline fill="none" stroke="{COLORS[fw]}" stroke-width="2" points="'
                           + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
    out.append(f'<text x="{pad}" y="16">% of the SGEMM peak ({peak:.0f} GFLOP/s), W2 training: '
               + ", ".join(f'<tspan fill="{COLORS[fw]}">{fw}</tspan>' for fw in FRAMEWORKS) + '</text>')
    out.append("</svg>")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    print(f"Command: OMP_NUM_THREADS={args.threads} bench/cost_growth.py --build-dir {args.build_dir} "
          f"--venv {args.venv} --threads {args.threads} --seconds {args.seconds} --epochs {args.epochs}")
    print(f"Machine: {run_bench.cpu_model()}, {os.cpu_count()} logical CPUs; load average {run_bench.load_average():.2f} before")
    sgemm = run_bench.run_json([run_bench.kerascpp_binary(args.build_dir), "--sgemm"], args)
    if "error" in sgemm:
        sys.exit(f"cost_growth.py: the SGEMM peak failed: {sgemm['error']}")
    peak = sgemm["gflops"]
    print(f"SGEMM peak: {peak:.1f} GFLOP/s ({sgemm.get('impl', '?')})")
    results = {}
    rows = ["| varied | T | batch | units | framework | samples/s | GFLOP/s | % of SGEMM peak | kerascpp ÷ torch |",
            "|---|---|---|---|---|---|---|---|---|"]
    for variable, shape in points():
        value = shape[variable]
        for fw in FRAMEWORKS:
            r = run_point(args, fw, shape)
            if "error" in r:
                results[fw, variable, value] = None
                rows.append(f"| {variable} | {shape['seq_len']} | {shape['batch']} | {shape['units']} | {fw} | failed: {r['error']} | | | |")
                continue
            r["gflops"] = r["samples_per_s"] * flops_per_sample(shape) / 1e9
            results[fw, variable, value] = r
            ours, theirs = results.get(("kerascpp", variable, value)), results.get(("torch", variable, value))
            ratio = f"{ours['samples_per_s'] / theirs['samples_per_s']:.2f}" if fw == "torch" and ours and theirs else ""
            rows.append(f"| {variable} | {shape['seq_len']} | {shape['batch']} | {shape['units']} | {fw} "
                        f"| {r['samples_per_s']:.0f} | {r['gflops']:.1f} | {100.0 * r['gflops'] / peak:.1f} | {ratio} |")
    print(f"load average after: {run_bench.load_average():.2f}\n")
    print("\n".join(rows))
    svg_plot(results, peak, os.path.join(run_bench.REPO, args.svg) if not os.path.isabs(args.svg) else args.svg)
    print(f"\nPlot: {args.svg}")
    return 1 if any(v is None for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
