#!/usr/bin/env python3
"""Keras's "Text classification with Transformer" example (keras.io/examples/nlp/text_classification_with_transformer),
the same model, data, settings and options as examples/imdb_transformer/main.cpp (--data, --epochs,
--num-words, --maxlen, --batch-size, --limit, --threads, --verbose), for bench/examples_vs_keras.py:

    /tmp/peervenv/bin/python bench/keras_examples/imdb_transformer.py --data ../shared/data/imdb/imdb.npz

Needs keras 3 and a backend (tensorflow unless KERAS_BACKEND says jax or torch); without --data it reads
Keras's cached imdb.npz (or downloads it).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imdb_data  # noqa: E402  (sets KERAS_BACKEND before keras is imported)

import keras  # noqa: E402
from keras import layers, ops  # noqa: E402


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs):
        attn_output = self.dropout1(self.att(inputs, inputs))
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.dropout2(self.ffn(out1))
        return self.layernorm2(out1 + ffn_output)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = self.pos_emb(ops.arange(start=0, stop=ops.shape(x)[-1], step=1))
        return self.token_emb(x) + positions


def main():
    args = imdb_data.parse_args(__doc__.splitlines()[0], num_words=20000, maxlen=200, batch_size=32)
    imdb_data.apply_threads(args.threads)
    embed_dim, num_heads, ff_dim = 32, 2, 32
    keras.utils.set_random_seed(args.seed)
    train, test = imdb_data.load_padded(args)

    inputs = layers.Input(shape=(args.maxlen,))
    x = TokenAndPositionEmbedding(args.maxlen, args.num_words, embed_dim)(inputs)
    x = TransformerBlock(embed_dim, num_heads, ff_dim)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(20, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    imdb_data.fit_and_report(model, args, train, test)


if __name__ == "__main__":
    main()
