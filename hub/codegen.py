"""Regenerate the protobuf / gRPC modules in ``hub/v1`` from ``proto/hub/v1``.

Run ``python -m hub.codegen`` after editing a .proto file and commit the result. The generated
files carry protoc's DO-NOT-EDIT header; a test regenerates them and fails on any difference.
The proto package ``hub.v1`` maps onto the Python package ``hub.v1``, so generated imports
(``from hub.v1 import common_pb2``) resolve without rewriting.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "proto"
PROTO_FILES = sorted((PROTO_ROOT / "hub" / "v1").glob("*.proto"))
#: The generator is pinned (pyproject's test extra) so regenerated code is byte-identical.
GENERATOR_VERSION = "1.85.1"


def generate(out_dir: Path) -> list[Path]:
    """Write generated modules under ``out_dir/hub/v1`` and return their paths."""
    import grpc_tools
    from grpc_tools import protoc

    target = out_dir / "hub" / "v1"
    target.mkdir(parents=True, exist_ok=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in PROTO_FILES),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed")
    init = target / "__init__.py"
    init.write_text('"""Generated protobuf and gRPC code for hub.v1 (python -m hub.codegen). Do not edit."""\n')
    return sorted(target.glob("*.py*"))


def main() -> int:
    import grpc_tools

    version = getattr(grpc_tools, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("grpcio-tools")
    if version != GENERATOR_VERSION:
        print(f"warning: grpcio-tools {version}, expected {GENERATOR_VERSION}", file=sys.stderr)
    for path in generate(REPO):
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
