"""Build the Cython matching engine, its record decoder and the ledger's batched SHA-256. Everything else is declared
in pyproject.toml.

HUB_DISABLE_CEXT=1 skips all three (the hub then refuses to start unless HUB_ENGINE=reference); by default
a failed compile of the engine fails the install, so a broken toolchain is never silently hidden.
``ledger._hashing`` needs OpenSSL's headers (libssl-dev) and is optional: without it the ledger hashes
through hashlib (``ledger.hashing``), the same digests, slower.
"""

import os

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("HUB_DISABLE_CEXT") != "1":
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                "matching._cengine",
                ["matching/_cengine.pyx"],
                language="c++",
                extra_compile_args=["-O3", "-std=c++17"],
            ),
            Extension(
                "matching._codec",
                ["matching/_codec.pyx"],
                extra_compile_args=["-O3"],
            ),
            Extension(
                "ledger._hashing",
                ["ledger/_hashing.pyx"],
                libraries=["crypto"],
                # SHA256_Init and friends: deprecated in OpenSSL 3 for the EVP interface, whose
                # per-call fetch and context costs are what this module exists to avoid.
                extra_compile_args=["-O3", "-Wno-deprecated-declarations"],
                optional=True,
            ),
        ],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,  # safe: tick and lot sizes are validated non-zero at load
        },
    )

setup(ext_modules=ext_modules)
