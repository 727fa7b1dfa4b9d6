"""Build the Cython matching engine. Everything else is declared in pyproject.toml.

HUB_DISABLE_CEXT=1 skips the extension (the hub then refuses to start unless HUB_ENGINE=reference);
by default a failed compile fails the install, so a broken toolchain is never silently hidden.
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
            )
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
