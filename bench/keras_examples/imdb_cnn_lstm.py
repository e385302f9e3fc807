#!/usr/bin/env python3
"""Keras's imdb_cnn_lstm example, the model examples/imdb_cnn_lstm builds in C++, for the side-by-side
run of bench/examples_vs_keras.py: Embedding(20000, 128) -> Dropout(0.25) -> Conv1D(64, 5, relu) ->
MaxPooling1D(4) -> LSTM(70) -> Dense(1) -> sigmoid, maxlen 100, Adam, batch 30, 2 epochs, validated on
the test set. Prints Keras's verbose=2 epoch lines and "test accuracy: X"."""
import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="imdb.npz")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = p.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from imdb_data import load_imdb

    keras.utils.set_random_seed(42)
    (x_train, y_train), (x_test, y_test) = load_imdb(args.data, num_words=20000)
    x_train = keras.utils.pad_sequences(x_train, maxlen=100)
    x_test = keras.utils.pad_sequences(x_test, maxlen=100)
    model = keras.Sequential([
        keras.Input(shape=(100,)),
        keras.layers.Embedding(20000, 128),
        keras.layers.Dropout(0.25),
        keras.layers.Conv1D(64, 5, padding="valid", activation="relu", strides=1),
        keras.layers.MaxPooling1D(pool_size=4),
        keras.layers.LSTM(70),
        keras.layers.Dense(1),
        keras.layers.Activation("sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=30, epochs=args.epochs, validation_data=(x_test, y_test), verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=30, verbose=0)
    print(f"test accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
