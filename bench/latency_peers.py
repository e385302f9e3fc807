#!/usr/bin/env python3
"""Inference latency in a peer framework, one request at a time; one JSON line per path.

  --make-h5 PATH   builds the model with Keras (random weights) and saves it as an .h5 file for
                   kerascpp's bench_latency (and for --framework keras to load back)
  --framework keras   loads that .h5 file; paths "call" (model(x, training=False)) and "predict"
                      (model.predict(x, batch_size=B, verbose=0))
  --framework torch   the same architecture in PyTorch, eval mode under torch.inference_mode();
                      path "call" (model(x))

Models (bench/latency.py drives all of them):
  seed  Embedding(6000, 100) -> SimpleRNN(16) -> Dense(1, sigmoid), T = 130 (examples/imdb_sentiment)
  lstm  Embedding(20000, 128) -> LSTM(128) -> Dense(1, sigmoid), T = 200
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (the models of the training benchmark)

# The seed model is W1's, the LSTM model W2's.
MODELS = {"seed": peers.WORKLOADS["W1"], "lstm": peers.WORKLOADS["W2"]}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--make-h5", help="build the model with Keras and save it here, then exit")
    p.add_argument("--framework", choices=["keras", "torch"])
    p.add_argument("--h5", help="--framework keras: the .h5 file to load")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not args.make_h5 and not args.framework:
        p.error("give --make-h5 or --framework")
    if args.framework == "keras" and not args.h5:
        p.error("--framework keras needs --h5")
    return args


def import_keras(threads):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.config.set_visible_devices([], "GPU")
    import keras
    return keras, tf


def make_h5(spec, path, args):
    keras, _ = import_keras(args.threads)
    keras.utils.set_random_seed(args.seed)
    peers.keras_model(keras, spec).save(path)


def quantile(values, q):
    values = sorted(values)
    return values[min(int(q * (len(values) - 1) + 0.5), len(values) - 1)]


def time_requests(serve, spec, args):
    """Milliseconds of each timed request, each a fresh batch of random tokens."""
    import numpy as np
    rng = np.random.RandomState(args.seed)

    def request():
        return rng.randint(1, spec["vocab"], size=(args.batch, spec["seq_len"])).astype(np.int32)

    for _ in range(args.warmup):
        serve(request())
    ms = []
    for _ in range(args.requests):
        x = request()
        start = time.perf_counter()
        serve(x)
        ms.append((time.perf_counter() - start) * 1000.0)
    return ms


def keras_paths(spec, args):
    keras, tf = import_keras(args.threads)
    model = keras.models.load_model(args.h5)
    version = f"keras {keras.__version__} / tensorflow {tf.__version__}"
    return version, {
        "call": lambda x: model(x, training=False).numpy(),
        "predict": lambda x: model.predict(x, batch_size=args.batch, verbose=0),
    }


def torch_paths(spec, args):
    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    torch.manual_seed(args.seed)

    model = peers.torch_net(spec).eval()

    def call(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x).long()).numpy()

    return f"torch {torch.__version__}", {"call": call}


def main(argv=None):
    args = parse_args(argv)
    spec = MODELS[args.model]
    if args.make_h5:
        make_h5(spec, args.make_h5, args)
        return 0
    version, paths = (keras_paths if args.framework == "keras" else torch_paths)(spec, args)
    for name, serve in paths.items():
        ms = time_requests(serve, spec, args)
        print(json.dumps({"framework": args.framework, "path": name, "model": args.model, "batch": args.batch,
                          "requests": args.requests, "p50_ms": quantile(ms, 0.5), "p99_ms": quantile(ms, 0.99),
                          "threads": args.threads, "version": version}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
