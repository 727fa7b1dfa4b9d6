"""An apply worker (``python -m ledger.apply_worker``'s ``main``) that dies right after a commit
while ``FAULTY_WORKER_MARKER`` names a file that exists: it deletes the file, then exits before
answering, as a worker killed between its commit and its ``ok`` would. Its replacement (the file
gone) serves normally. Run as a script by the tests, in place of the real worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, not an installed copy

from ledger import apply_worker  # noqa: E402
from ledger.inserts import BatchInserter  # noqa: E402

_commit = BatchInserter.commit


def _commit_then_die(self, rows, nodes, checkpoints) -> None:
    _commit(self, rows, nodes, checkpoints)
    marker = Path(os.environ["FAULTY_WORKER_MARKER"])
    if marker.exists():
        marker.unlink()
        os._exit(9)


if __name__ == "__main__":
    BatchInserter.commit = _commit_then_die
    raise SystemExit(apply_worker.main())
