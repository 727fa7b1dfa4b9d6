"""The gateway serves every call from one event loop: an order a fairness rule holds waits on the
worker pool, and the loop goes on serving everyone else meanwhile."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import replace

from hub.client import HubClient
from hub.fairness import FairnessConfig
from matching.types import AssetClass
from tests.fairness.support import FX_LOT, FX_REF, P, wait_until
from tests.integration.conftest import default_config
from tests.integration.support import token

WINDOW_NS = (2_000_000_000, 2_500_000_000)  # long: the rest of the test happens inside it


def test_an_order_held_in_a_batch_window_does_not_stop_the_loop_serving_others(start_hub) -> None:
    config = replace(default_config(), fairness=FairnessConfig(batching={AssetClass.FX: WINDOW_NS}))
    running = start_hub(config)
    fx_trader = HubClient(running.target, token("scalper-1"), timeout=30)
    scalper = HubClient(running.target, token("scalper-2"), timeout=30)
    try:
        held: Future = Future()

        def submit_fx() -> None:
            try:
                held.set_result(fx_trader.submit("EURUSD", "buy", FX_LOT, FX_REF))
            except BaseException as exc:  # noqa: BLE001 - re-raised by the test below
                held.set_exception(exc)

        threading.Thread(target=submit_fx, daemon=True).start()
        wait_until(lambda: running.hub.scheduler.pending == 1, what="the FX order held in its batch")
        started = time.monotonic()
        ack = scalper.submit("AAPL", "buy", 1, P)  # another asset class: nothing holds it
        with scalper.open_session() as session:
            assert session.heartbeat(timeout=10) is not None
            streamed = session.submit("AAPL", "sell", 1, P + 100, timeout=10)
        served_in = time.monotonic() - started
        assert ack.accepted and streamed.accepted
        assert not held.done(), "the held order was released before the others were served"
        assert served_in < WINDOW_NS[0] / 1e9, served_in
        fx_ack = held.result(timeout=30)
        assert fx_ack.accepted and fx_ack.sequence > streamed.sequence  # sequenced when its window closed
    finally:
        fx_trader.close()
        scalper.close()
