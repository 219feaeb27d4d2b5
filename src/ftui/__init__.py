"""ftui: from a dataset to a measured fine-tuned language model, in a terminal."""

__version__ = "0.1.0"
