"""Replay must run each journal entry as the live hub ran it: the commands of one entry are
registered together, then routed. Entries that share a hub time (a fairness batch; a coarse or,
here, a fake clock) must not be merged: a replace the live hub found unowned (an earlier entry had
filled its order) would take rate tokens on replay, and the rebuilt state would not be the one
the last checkpoint signed."""

from __future__ import annotations

import threading
import time

from hub.v1 import common_pb2 as cpb
from tests.risk.support import TICK, P, RiskHub, hub_config


def test_entries_with_the_same_hub_time_replay_one_by_one(tmp_path) -> None:
    rh = RiskHub(hub_config(data_dir=tmp_path), durable=True)  # the fake clock: one hub time for all
    try:
        order = rh.sell("mm-1", "AAPL", P, 10)
        answers = {}
        with rh.hub._lock:  # the replace passes its gateway check, then waits for the sequencer ...
            replacing = threading.Thread(target=lambda: answers.setdefault(
                "replace", rh.replace("mm-1", "AAPL", order.order_id, P + TICK, 10)))
            replacing.start()
            time.sleep(0.3)
            fill = rh.buy("scalper-1", "AAPL", P, 10, tif=cpb.IOC)  # ... behind a fill of its order
        replacing.join(10)
        assert len(fill.trades()) == 1 and answers["replace"].reason == cpb.REJECT_UNKNOWN_ORDER
        before = rh.hub.state_digest_bytes()
        rh.restart()  # raises RecoveryError if the replay's state differs from the checkpoint's
        assert rh.hub.state_digest_bytes() == before
    finally:
        rh.stop()
