#!/usr/bin/env python3
"""Keras's imdb_cnn_lstm example, the model examples/imdb_cnn_lstm builds in C++, with its options
(--data, --epochs, --num-words, --maxlen, --batch-size, --limit, --threads, --verbose):
Embedding(20000, 128) -> Dropout(0.25) -> Conv1D(64, 5, relu) -> MaxPooling1D(4) -> LSTM(70) -> Dense(1)
-> sigmoid, maxlen 100, Adam, batch 30, 2 epochs, validated on the test set. Prints Keras's verbose=2
epoch lines and "Test score: L, test accuracy: A" as the C++ example does.

    /tmp/peervenv/bin/python bench/keras_examples/imdb_cnn_lstm.py --data ../shared/data/imdb/imdb.npz
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imdb_data  # noqa: E402  (sets KERAS_BACKEND before keras is imported)


def main():
    args = imdb_data.parse_args(__doc__.splitlines()[0], num_words=20000, maxlen=100, batch_size=30)
    imdb_data.apply_threads(args.threads)
    import keras

    keras.utils.set_random_seed(args.seed)
    train, test = imdb_data.load_padded(args)
    model = keras.Sequential([
        keras.Input(shape=(args.maxlen,)),
        keras.layers.Embedding(args.num_words, 128),
        keras.layers.Dropout(0.25),
        keras.layers.Conv1D(64, 5, padding="valid", activation="relu", strides=1),
        keras.layers.MaxPooling1D(pool_size=4),
        keras.layers.LSTM(70),
        keras.layers.Dense(1),
        keras.layers.Activation("sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    imdb_data.fit_and_report(model, args, train, test)


if __name__ == "__main__":
    main()
