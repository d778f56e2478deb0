"""The end-of-day closing in the service menu (terminal.service.actions `closing`,
`z_report`; the export bundle's z-reports.json; `evterm service closing / z-report`
output): a station with card payment and no backend refuses a closing with the reason,
the latest Z-report is shown as text and JSON, and the bundle carries it."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.localapi import RequestError
from terminal.payment.ledger import Closing
from terminal.payment.reconcile import reconcile
from terminal.payment.zreport import z_report
from terminal.service_cli import _show
from terminal.store import PaymentStatus
from terminal.store.closings import ClosingStore
from tests.unit.closing_helpers import journal_payment
from tests.unit.test_service import Ctx, pin_hash, run, with_keys  # noqa: F401 (fixture)


def test_closing_and_z_report_from_the_service_menu(tmp_path, pin_hash, capsys):  # noqa: F811
    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        with pytest.raises(RequestError, match=r"^action: closing: gateway: no backend"):
            await ctx.action(token, "closing")
        empty = await ctx.action(token, "z_report")
        assert empty["z_report"] is None and empty["text"] == "no closing yet\n"
        # a closing as the daily one leaves it
        store = ctx.station.store.store
        now = ctx.clock.now()
        journal_payment(store, "s1:pay", PaymentStatus.CAPTURED, now, captured=Decimal("9.99"),
                        psp_reference="P-1")
        closing = Closing("gateway", now - timedelta(days=1), now + timedelta(seconds=1),
                          "EUR")
        payment = store.payment(reference="s1:pay")
        assert payment is not None
        result = reconcile([payment], {}, closing)  # the gateway lost the capture
        report = z_report("z1", "DE*EVT*E0001*1", "daily", closing, result, (), now)
        tables = ClosingStore(store)
        tables.add("z1", "gateway", "daily", closing.since, now, report, now)
        tables.finish("z1", report, now, "z_report")
        shown = await ctx.action(token, "z_report")
        assert shown["z_report"]["closing_id"] == "z1"
        assert shown["z_report"]["status"] == "done"
        assert "missing_capture s1:pay" in shown["text"]
        _show(argparse.Namespace(service_command="z-report", json=False), shown)
        assert capsys.readouterr().out == shown["text"]
        _show(argparse.Namespace(service_command="z-report", json=True), shown)
        assert json.loads(capsys.readouterr().out)["closing_id"] == "z1"
        bundle = Path((await ctx.action(token, "export",
                                        folder=str(ctx.tmp / "media" / "usb")))["path"])
        (exported,) = json.loads((bundle / "z-reports.json").read_text())
        assert exported["closing_id"] == "z1" and exported["findings"][0]["reference"] == \
            "s1:pay"
        assert "service_action" in ctx.audit_kinds()

    run(tmp_path, pin_hash, body, **with_keys(tmp_path))
