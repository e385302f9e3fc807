"""Keras's own imdb.load_data on a local imdb.npz (no download): its get_file is pointed at the file,
so the word-index shift, start / out-of-vocabulary marks and the shuffles are Keras's."""
import keras


def load_imdb(path, num_words):
    import keras.src.datasets.imdb as imdb_module
    imdb_module.get_file = lambda *args, **kwargs: path
    return keras.datasets.imdb.load_data(num_words=num_words)
