"""Monthly participant statements and the venue revenue summary, hand-computed from a small month.

Given (default schedule, USD cents):
  January: inst-1 takes 10,001 AAPL @ $190.00 from scalper-1 -> inst-1 4,901 (1,900.19 + 3,000.3 rounded up),
           scalper-1 -1,900 (rebate -1,900.19 toward zero); inst-1's $1,000.00 fixed fee for January.
  February (inst-1 in equity tier 1 from January's 10,001 shares; no futures volume):
    #2 AAPL 100 @ 190.00  maker scalper-1 -19   taker inst-1   44 (base 49: discount 5)
    #3 AAPL 100 @ 190.00  maker inst-1      8 (base 10: discount 2)   taker mm-1   38
    #4 ESZ6 2 @ 6000.00   maker mm-1     -600   taker inst-1  750 (600 + 2 x $0.75, base tier)
    #5 BTC 0.5 @ 95,000   maker mm-1      -47   taker scalper-1 48
    inst-1's $1,000.00 fixed fee for February.
"""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from compliance.fees import (
    VOLUME_PER_CONTRACT,
    FeeEngine,
    FeeRecord,
    FixedFeeCharge,
    Liquidity,
    Month,
    fill_fee,
)
from compliance.statements import (
    CurrencyTotals,
    InstrumentLine,
    RevenueLine,
    format_contracts,
    monthly_statements,
    participant_statement,
    venue_revenue_summary,
)
from matching.instruments import DEFAULT_INSTRUMENTS
from matching.types import AssetClass, Side, Trade

INST = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
AAPL, ESZ6, BTC = INST["AAPL"], INST["ESZ6"], INST["BTC-USD"]
JAN, FEB, MAR = Month(2026, 1), Month(2026, 2), Month(2026, 3)
DAY = 86_400 * 10**9
INST1, SCALPER1, MM1 = ("inst-1", "institution"), ("scalper-1", "scalper"), ("mm-1", "market_maker")


def _trade(inst, price, qty, tid):
    return Trade(tid, inst.instrument_id, tid, price, qty, Side.BUY, 1, 1, 2, 2, 0, 0)


def run_month() -> tuple[list[FeeRecord], list[FixedFeeCharge]]:
    engine = FeeEngine()
    for pid, cls in (INST1, SCALPER1, MM1):
        engine.register_participant(pid, cls)
    fills: list[FeeRecord] = []
    fixed: list[FixedFeeCharge] = []
    for ts, inst, price, qty, maker, taker, tid in [
        (JAN.start_ns + 3 * DAY, AAPL, 190_0000, 10_001, SCALPER1, INST1, 1),
        (FEB.start_ns + 2 * DAY, AAPL, 190_0000, 100, SCALPER1, INST1, 2),
        (FEB.start_ns + 3 * DAY, AAPL, 190_0000, 100, INST1, MM1, 3),
        (FEB.start_ns + 4 * DAY, ESZ6, 6000_00, 2, MM1, INST1, 4),
        (FEB.start_ns + 5 * DAY, BTC, 95_000_00, 50_000_000, MM1, SCALPER1, 5),
    ]:
        result = engine.on_trade(ts, inst, _trade(inst, price, qty, tid), maker_id=maker[0], maker_class=maker[1],
                                 taker_id=taker[0], taker_class=taker[1])
        fills += [result.maker, result.taker]
        fixed += result.fixed_charges
    fixed += engine.advance(MAR.start_ns)  # March's fixed fee: not on February's statements
    return fills, fixed


FILLS, FIXED = run_month()


def test_the_scenario_produces_the_hand_computed_fills():
    assert [(r.trade_id, r.participant_id, r.fee, r.base_fee, r.tier) for r in FILLS] == [
        (1, "scalper-1", -1900, -1900, 0), (1, "inst-1", 4901, 4901, 0),
        (2, "scalper-1", -19, -19, 0), (2, "inst-1", 44, 49, 1),
        (3, "inst-1", 8, 10, 1), (3, "mm-1", 38, 38, 0),
        (4, "mm-1", -600, -600, 0), (4, "inst-1", 750, 750, 0),
        (5, "mm-1", -47, -47, 0), (5, "scalper-1", 48, 48, 0),
    ]
    assert [(c.participant_id, c.month, c.amount) for c in FIXED] == [
        ("inst-1", JAN, 1_000_00), ("inst-1", FEB, 1_000_00), ("inst-1", MAR, 1_000_00)]


# -- PARTICIPANT STATEMENTS ---------------------------------------------------------------------

STATEMENTS = [
    # participant | fixed, fill fees, rebates, discounts, fills, maker, taker | net
    ("inst-1", FEB, (1_000_00, 44 + 8 + 750, 0, 5 + 2, 3, 1, 2), 1_008_02),
    ("scalper-1", FEB, (0, 48, -19, 0, 2, 1, 1), 29),
    ("mm-1", FEB, (0, 38, -600 - 47, 0, 3, 2, 1), -609),
    ("inst-1", JAN, (1_000_00, 4901, 0, 0, 1, 0, 1), 1_049_01),
    ("scalper-1", JAN, (0, 0, -1900, 0, 1, 1, 0), -1900),
]


@pytest.mark.parametrize(("pid", "month", "totals", "net"), STATEMENTS)
def test_statement_totals_match_hand_computation(pid, month, totals, net):
    st = participant_statement(pid, month, FILLS, FIXED)
    assert st.totals == (CurrencyTotals("USD", *totals),)
    assert st.total("USD").net == net


def test_institution_statement_lines_volume_and_discounts():
    st = participant_statement("inst-1", FEB, FILLS, FIXED)
    assert st.participant_class == "institution" and st.month == FEB
    assert st.instruments == (
        InstrumentLine(1, "AAPL", "USD", fills=2, contracts=200 * VOLUME_PER_CONTRACT, notional_raw=2 * 190_000_000,
                       notional_scale=4, fill_fees=52, rebates=0, discounts=7),
        InstrumentLine(3, "ESZ6", "USD", fills=1, contracts=2 * VOLUME_PER_CONTRACT, notional_raw=60_000_000,
                       notional_scale=2, fill_fees=750, rebates=0, discounts=0),
    )
    assert st.contract_volume == ((AssetClass.EQUITY, 200 * VOLUME_PER_CONTRACT), (AssetClass.FUTURE, 2 * VOLUME_PER_CONTRACT))
    assert [(c.month, c.amount) for c in st.fixed_charges] == [(FEB, 1_000_00)]


def test_fractional_contract_volume_is_exact():
    st = participant_statement("scalper-1", FEB, FILLS, FIXED)
    assert dict(st.contract_volume) == {AssetClass.EQUITY: 100 * VOLUME_PER_CONTRACT,
                                        AssetClass.CRYPTO: VOLUME_PER_CONTRACT // 2}
    assert st.to_dict()["contract_volume"] == {"equity": "100", "crypto": "0.5"}


def test_statement_renders_as_text():
    text = participant_statement("inst-1", FEB, FILLS, FIXED).render_text()
    lines = text.splitlines()
    assert lines[0] == "Fee statement 2026-02  participant inst-1 (institution)"
    assert lines[3].split() == ["currency", "fixed", "fees", "fill", "fees", "rebates", "net", "discounts", "given", "fills",
                                "maker", "taker"]
    assert lines[4].split() == ["USD", "1000.00", "8.02", "0.00", "1008.02", "0.07", "3", "1", "2"]
    assert lines[7].split() == ["AAPL", "USD", "2", "200", "38000.00", "0.52", "0.00", "0.07", "0.52"]
    assert lines[8].split() == ["ESZ6", "USD", "1", "2", "600000.00", "7.50", "0.00", "0.00", "7.50"]
    assert "contract volume: equity 200, future 2" in text
    assert "fixed fee 2026-02: 1000.00 USD (schedule default-v1)" in text


def test_statement_to_dict_is_json_with_integer_minor_units():
    d = json.loads(participant_statement("mm-1", FEB, FILLS, FIXED).to_json())
    assert d["totals"] == [{"currency": "USD", "fixed_fees": 0, "fill_fees": 38, "rebates": -647, "discounts": 0,
                            "net": -609, "fills": 3, "maker_fills": 2, "taker_fills": 1}]
    assert [(x["symbol"], x["notional"], x["net"]) for x in d["instruments"]] == [
        ("AAPL", "19000.00", 38), ("ESZ6", "600000.00", -600), ("BTC-USD", "47500.00", -47)]


def test_statement_rebuilt_from_ledger_records_equals_the_live_one():
    ledger = [json.dumps(r.to_dict(), sort_keys=True) for r in FILLS]
    ledger_fixed = [json.dumps(c.to_dict(), sort_keys=True) for c in FIXED]
    fills = [FeeRecord.from_dict(json.loads(x)) for x in ledger]
    fixed = [FixedFeeCharge.from_dict(json.loads(x)) for x in ledger_fixed]
    assert monthly_statements(FEB, fills, fixed) == monthly_statements(FEB, FILLS, FIXED)


def test_statements_do_not_depend_on_record_order():
    shuffled = FILLS[:]
    random.Random(5).shuffle(shuffled)
    assert monthly_statements(FEB, shuffled, FIXED[::-1]) == monthly_statements(FEB, FILLS, FIXED)


def test_monthly_statements_cover_every_active_participant():
    assert sorted(monthly_statements(FEB, FILLS, FIXED)) == ["inst-1", "mm-1", "scalper-1"]
    assert sorted(monthly_statements(MAR, FILLS, FIXED)) == ["inst-1"]  # fixed fee only
    assert monthly_statements(MAR, FILLS, FIXED)["inst-1"].fills == 0


def test_a_participant_without_activity_gets_an_empty_statement():
    st = participant_statement("nobody", FEB, FILLS, FIXED, participant_class="scalper")
    assert (st.totals, st.instruments, st.fills, st.total("USD").net) == ((), (), 0, 0)
    assert "participant nobody (scalper)" in st.render_text()


def test_totals_are_kept_per_currency():
    jpy = dataclasses.replace(AAPL, instrument_id=99, symbol="7203.T", currency="JPY", price_scale=1, tick_size=1,
                              reference_price=3_000_0)
    fee = fill_fee(jpy, 3_000_0, 100, 100_000, 0)  # 0.1 bp of 300,000 yen = 3 yen
    assert fee == 3
    yen = FeeRecord(9, FEB.start_ns + DAY, "scalper-1", "scalper", Liquidity.TAKER, 99, "7203.T",
                    AssetClass.EQUITY, "JPY", 100, 0, 3_000_000, 1, fee, fee, "default-v1", 0)
    st = participant_statement("scalper-1", FEB, [*FILLS, yen], FIXED)
    assert [(t.currency, t.fill_fees, t.net) for t in st.totals] == [("JPY", 3, 3), ("USD", 48, 29)]
    assert "JPY" in st.render_text()


def test_format_contracts():
    assert [format_contracts(v) for v in (0, 10_001 * VOLUME_PER_CONTRACT, VOLUME_PER_CONTRACT // 2, 1)] == [
        "0", "10001", "0.5", "0.000000000001"]


# -- VENUE REVENUE SUMMARY ----------------------------------------------------------------------


def test_venue_revenue_summary_for_february():
    s = venue_revenue_summary(FILLS, FIXED, month=FEB)
    assert s.period == "2026-02"
    assert s.totals == (RevenueLine("USD", "USD", fill_fees=888, fixed_fees=1_000_00, rebates=-666, discounts=7, fills=8),)
    assert s.total().fees_collected == 100_888 and s.total().net == 100_222  # 25 + 46 + 150 + 1 + fixed
    assert [(x.key, x.fill_fees, x.fixed_fees, x.rebates, x.net) for x in s.by_class] == [
        ("institution", 802, 1_000_00, 0, 1_008_02), ("market_maker", 38, 0, -647, -609), ("scalper", 48, 0, -19, 29)]
    assert [(x.key, x.fill_fees, x.rebates, x.net, x.fills) for x in s.by_instrument] == [
        ("AAPL", 90, -19, 71, 4), ("ESZ6", 750, -600, 150, 2), ("BTC-USD", 48, -47, 1, 2)]


def test_venue_net_equals_the_sum_of_participant_nets():
    statements = monthly_statements(FEB, FILLS, FIXED)
    assert venue_revenue_summary(FILLS, FIXED, month=FEB).total().net == sum(st.total().net for st in statements.values())


def test_venue_revenue_summary_over_everything():
    s = venue_revenue_summary(FILLS, FIXED)
    assert s.period == "all"
    assert s.total().net == 100_222 + (4901 - 1900) + 2 * 1_000_00  # February + January's trade + Jan/Mar fixed fees


def test_venue_revenue_summary_renders():
    s = venue_revenue_summary(FILLS, FIXED, month=FEB)
    text = s.render_text()
    assert text.startswith("Venue fee revenue 2026-02")
    assert any(line.split() == ["USD", "USD", "8.88", "1000.00", "1008.88", "-6.66", "1002.22", "0.07", "8"]
               for line in text.splitlines())
    d = json.loads(s.to_json())
    assert d["totals"][0]["net"] == 100_222 and [x["key"] for x in d["by_class"]] == ["institution", "market_maker",
                                                                                       "scalper"]
