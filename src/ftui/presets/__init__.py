"""The shipped presets are data (``*.toml``, with their offline samples in ``data/``); ``synth``
is the generator of those synthetic samples, a development tool outside the runtime core."""
