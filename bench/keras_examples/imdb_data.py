"""What the Keras twins of the IMDb examples share: the C++ examples' command-line options (the same
names and defaults: examples/imdb_options.hpp), the thread count, and the data, loaded as the C++
examples load it: Keras's own imdb.load_data, on a local imdb.npz when --data names one (its get_file
is pointed at the file, so the word-index shift, start / out-of-vocabulary marks and the shuffles are
Keras's), then the first --limit reviews, padded to --maxlen."""
import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(description, num_words, maxlen, batch_size, epochs=2):
    """--epochs, --data, --num-words, --maxlen, --batch-size, --limit, --threads, --verbose, with the
    defaults of the C++ example the twin mirrors."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=epochs, help="training epochs")
    p.add_argument("--data", help="imdb.npz (default: Keras's cache, then a download)")
    p.add_argument("--num-words", type=int, default=num_words, help="vocabulary size")
    p.add_argument("--maxlen", type=int, default=maxlen, help="reviews padded or cut to this many words")
    p.add_argument("--batch-size", type=int, default=batch_size, help="batch size")
    p.add_argument("--limit", type=int, default=0, help="keep only the first N training and test reviews")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads per op and between ops (default: the backend's own choice)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="fit's verbosity")
    p.add_argument("--seed", type=int, default=42, help="keras.utils.set_random_seed")
    return p.parse_args()


def apply_threads(threads):
    """--threads N: TensorFlow's intra- and inter-op pools (before any op runs). Other backends keep
    their own settings (jax reads XLA_FLAGS, torch OMP_NUM_THREADS)."""
    if threads <= 0 or os.environ["KERAS_BACKEND"] != "tensorflow":
        return
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def load_imdb(path, num_words):
    """Keras's imdb.load_data, reading `path` instead of downloading when it is given."""
    import keras
    if path:
        import keras.src.datasets.imdb as imdb_module
        imdb_module.get_file = lambda *args, **kwargs: path
    return keras.datasets.imdb.load_data(num_words=num_words)


def load_padded(args):
    """((x_train, y_train), (x_test, y_test)) as the C++ examples make them: the first --limit reviews,
    padded (or cut, keeping the end) to --maxlen."""
    import keras
    (x_train, y_train), (x_test, y_test) = load_imdb(args.data, args.num_words)
    if args.limit > 0:
        x_train, y_train, x_test, y_test = (a[:args.limit] for a in (x_train, y_train, x_test, y_test))
    pad = lambda x: keras.utils.pad_sequences(x, maxlen=args.maxlen)
    return (pad(x_train), y_train), (pad(x_test), y_test)


def fit_and_report(model, args, train, test):
    """Trains validated on the test set, as both examples do, and prints the C++ examples' last line."""
    model.fit(*train, batch_size=args.batch_size, epochs=args.epochs, validation_data=test, verbose=args.verbose)
    loss, accuracy = model.evaluate(*test, batch_size=args.batch_size, verbose=0)
    print(f"Test score: {loss:.4f}, test accuracy: {accuracy:.4f}")
