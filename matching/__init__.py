"""Order books and matching engines: a Cython hot path and a pure-Python reference oracle."""
