#!/usr/bin/env python3
"""Times training epochs of one reference workload in a peer framework and prints one JSON line.

Peers: "keras" (Keras 3 on the TensorFlow backend, CPU) and "torch" (PyTorch, on the CPU or with
--device cuda on the GPU through cuDNN). The workloads are the ones bench_kerascpp runs (see
docs/performance.md):

  W1  Embedding(6000, 100) -> SimpleRNN(16)  -> Dense(1, sigmoid), T = 130, batch 100
  W2  Embedding(20000, 128) -> LSTM(128)     -> Dense(1, sigmoid), T = 200, batch 64
  W3  Embedding(20000, 128) -> GRU(128)      -> Dense(1, sigmoid), T = 200, batch 64 (reset_after)

all trained with Adam(1e-3) on binary cross-entropy over random tokens and random 0/1 labels.
One warm-up epoch (graph tracing, XLA / oneDNN JIT, first-touch page faults) is run and discarded;
the median of the timed epochs is reported. Run one framework per process: peak RSS is the
process's (resource.getrusage), so mixing frameworks in one process would blur it.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

WORKLOADS = {
    "W1": dict(vocab=6000, embed=100, cell="SimpleRNN", units=16, seq_len=130, batch=100),
    "W2": dict(vocab=20000, embed=128, cell="LSTM", units=128, seq_len=200, batch=64),
    "W3": dict(vocab=20000, embed=128, cell="GRU", units=128, seq_len=200, batch=64),
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    p.add_argument("--framework", required=True, choices=["keras", "torch"])
    p.add_argument("--samples", type=int, required=True, help="training samples per epoch")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--seq-len", type=int, help="override the workload's sequence length (bench/cost_growth.py)")
    p.add_argument("--batch-size", type=int, help="override the workload's batch size")
    p.add_argument("--units", type=int, help="override the workload's recurrent units")
    p.add_argument("--device", default="cpu", help="torch only: cpu, cuda or cuda:N")
    p.add_argument("--tf32", action="store_true",
                   help="torch on a GPU: allow TF32 in cuDNN and cuBLAS (torch's cuDNN default; kerascpp uses "
                        "strict fp32, so the default here is off for a like-for-like comparison)")
    p.add_argument("--no-flush-denormal", dest="flush_denormal", action="store_false",
                   help="torch: keep denormal floats (torch's default; TensorFlow always flushes them)")
    args = p.parse_args(argv)
    if args.samples < 1 or args.epochs < 1 or args.threads < 1:
        p.error("--samples, --epochs and --threads must be positive")
    if args.device != "cpu" and args.framework != "torch":
        p.error("--device is for --framework torch (the Keras peer runs on tensorflow-cpu)")
    return args


def make_data(spec, samples, seed):
    """Random token ids in [0, vocab) and random 0/1 labels, the same for every framework."""
    import numpy as np
    rng = np.random.RandomState(seed)
    x = rng.randint(0, spec["vocab"], size=(samples, spec["seq_len"])).astype(np.int32)
    y = rng.randint(0, 2, size=(samples, 1)).astype(np.float32)
    return x, y


def peak_rss_mb():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def keras_model(keras, spec):
    """Embedding -> recurrent layer -> Dense(1, sigmoid) of a workload, in Keras (bench/latency_peers.py too)."""
    cell = getattr(keras.layers, spec["cell"])
    return keras.Sequential([
        keras.Input(shape=(spec["seq_len"],), dtype="int32"),
        keras.layers.Embedding(spec["vocab"], spec["embed"]),
        cell(spec["units"]),   # GRU: reset_after=True is Keras's default
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def torch_net(spec):
    """The same model as a torch module (bench/latency_peers.py too)."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(spec["vocab"], spec["embed"])
            # nn.GRU applies the reset gate after the recurrent matmul: Keras's reset_after=True.
            rnn = {"SimpleRNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[spec["cell"]]
            self.rnn = rnn(spec["embed"], spec["units"], batch_first=True)
            self.dense = nn.Linear(spec["units"], 1)

        def forward(self, tokens):
            seq, _ = self.rnn(self.embedding(tokens))
            return torch.sigmoid(self.dense(seq[:, -1, :]))

    return Net()


def run_keras(spec, x, y, args):
    """Returns (per-epoch seconds of every epoch including the warm-up, version string)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    # Must happen before TensorFlow creates its thread pools (i.e. before the first op).
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.set_visible_devices([], "GPU")
    import keras
    keras.utils.set_random_seed(args.seed)

    model = keras_model(keras, spec)
    # jit_compile left at Keras's default ("auto": XLA when the model supports it): what a user gets.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=spec["batch"], epochs=1 + args.epochs, shuffle=True, verbose=0,
              callbacks=[EpochTimer()])
    version = f"keras {keras.__version__} / tensorflow {tf.__version__}"
    return times, version


def run_torch(spec, x, y, args):
    import torch
    from torch import nn
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(args.seed)
    # Backpropagating through 130-200 steps drives gradients into the denormal range, where x86
    # arithmetic is ~100x slower (torch's W2 backward: 2 s instead of 0.13 s per batch here).
    # TensorFlow sets flush-to-zero / denormals-are-zero in its worker threads; do the same for torch
    # so the comparison is not about that one flag. --no-flush-denormal measures torch's default.
    if args.flush_denormal:
        torch.set_flush_denormal(True)

    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    if on_gpu and not torch.cuda.is_available():
        sys.exit(f"peers.py: no CUDA GPU: torch {torch.__version__} sees none (torch.cuda.is_available() is False)")
    if on_gpu:
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.cuda.reset_peak_memory_stats(device)
    model = torch_net(spec).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCELoss()
    # On the GPU the whole data set is copied there once, as kerascpp's caching allocator
    # makes batch copies cheap anyway; only the per-batch indexing runs in the loop.
    xt = torch.from_numpy(x).long().to(device)
    yt = torch.from_numpy(y).to(device)
    n, batch = xt.shape[0], spec["batch"]

    times = []
    model.train()
    for _ in range(1 + args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device)   # shuffled each epoch, like Keras's fit(shuffle=True)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
            if on_gpu:
                # The loss on the host once per batch, as kerascpp's fit (and Keras's progress bar)
                # reads it: the same one synchronisation per step on both sides.
                loss.item()
        if on_gpu:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    version = f"torch {torch.__version__}"
    if on_gpu:
        version += f" / cuDNN {torch.backends.cudnn.version()} on {torch.cuda.get_device_name(device)}"
        run_torch.peak_device_mb = torch.cuda.max_memory_allocated(device) / (1024.0 * 1024.0)
    return times, version


def main(argv=None):
    args = parse_args(argv)
    spec = dict(WORKLOADS[args.workload])
    for key, value in (("seq_len", args.seq_len), ("batch", args.batch_size), ("units", args.units)):
        if value is not None:
            spec[key] = value
    x, y = make_data(spec, args.samples, args.seed)
    runner = run_keras if args.framework == "keras" else run_torch
    times, version = runner(spec, x, y, args)
    timed = times[1:]   # epoch 1 is the warm-up
    epoch_s = statistics.median(timed)
    print(json.dumps({
        "framework": args.framework,
        "workload": args.workload,
        "samples_per_s": round(args.samples / epoch_s, 2),
        "epoch_s": round(epoch_s, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "device": args.device,
        "peak_device_mb": getattr(run_torch, "peak_device_mb", None) if args.device != "cpu" else None,
        "tf32": args.tf32 if args.device != "cpu" else None,
        "samples": args.samples,
        "batch_size": spec["batch"],
        "seq_len": spec["seq_len"],
        "units": spec["units"],
        "threads": args.threads,
        "flush_denormal": True if args.framework == "keras" else args.flush_denormal,
        "warmup_epoch_s": round(times[0], 4),
        "epoch_times_s": [round(t, 4) for t in timed],
        "version": version,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
