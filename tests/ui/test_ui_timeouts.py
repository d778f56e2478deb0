"""Time limits the driver can extend (EN 301 549 / WCAG 2.2.1), as a process under Xvfb
against a real daemon and station simulator on an unscaled clock: after a session the
receipt screen shows the warning banner before the receipt's time on offer runs out
(the daemon still offers it), a touch anywhere (through Kivy's input dispatch) makes the
daemon keep it the full `receipt_timeout_s` from the touch and the banner goes, and
without a touch it goes back to the idle screen. The banner is laid out without clipping
(tests/ui/layout_check.py) in every language, over the top bar only (nothing of the
screen hidden)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.ui.layout_check import layout_problems
from ui.i18n import tr

RECEIPT_TIMEOUT_S = 26  # the warning shows 20 s before: from 6 s after the close (and a touch)
WARNING = re.compile(r"^The screen returns to the start in (\d+) s — touch to keep it$")
LANGUAGES = ("en", "de", "fr", "nl")


def until_of(state: dict) -> datetime:
    return datetime.fromisoformat(state["receipt_pending"]["until"].replace("Z", "+00:00"))


def session_closed(rig) -> str:
    """A short session started and stopped at the local API; its receipt on offer."""
    rig.ev("plug")
    session_id = str(rig.api("start", id_token="APP-TIMEOUTS")["session_id"])
    rig.wait_phase("Charging", timeout_s=20)
    rig.api("stop", reason="Local")
    rig.wait_phase("Finishing", timeout_s=20)
    rig.ev("unplug")
    rig.wait_for("the receipt on offer", lambda: (
        (pending := rig.state()["receipt_pending"]) and pending["session_id"] == session_id),
        20)
    return session_id


@pytest.mark.rig(speed=1.0, poll_interval_s=0.5,
                 extra={"ui": {"receipt_timeout_s": RECEIPT_TIMEOUT_S}})
def test_the_receipt_warns_before_it_times_out_and_a_touch_keeps_it(rig, ui_process):
    ui = ui_process(rig, size="800x480")
    ui.wait_for("the idle screen", lambda d: d["screen"] == "idle", 15)
    session_id = session_closed(rig)

    shown = ui.wait_for("the receipt screen", lambda d: d["screen"] == "receipt", 15)
    assert "ack" in shown["buttons"]
    warned = ui.wait_for("the timeout warning on the receipt", lambda d: d["screen"] ==
                         "receipt" and WARNING.match(d["timeout_warning"]), 30)
    seconds = int(WARNING.match(warned["timeout_warning"]).group(1))
    assert 0 < seconds <= 20
    before = rig.state()
    assert before["receipt_pending"]["session_id"] == session_id  # warned before it went
    assert warned["timeout_warning"] == tr("timeout_warning", "en", seconds=seconds)

    for _ in range(2):  # touch anywhere: on the banner, which lets nothing through
        until = until_of(rig.state())
        reply = ui.control("touch", pos=[400, 460])
        assert reply == {"ok": True}
        rig.wait_for("the daemon to keep the receipt", lambda u=until: (
            (state := rig.state())["receipt_pending"] and until_of(state) > u), 10)
        kept = ui.wait_for("the banner gone", lambda d: d["screen"] == "receipt"
                           and d["timeout_warning"] == "", 10)
        assert kept["widgets"]["receipt_total"]  # the receipt itself, untouched
        ui.wait_for("the warning again", lambda d: d["screen"] == "receipt"
                    and WARNING.match(d["timeout_warning"]), 30)
    assert until_of(rig.state()) > until_of(before)

    bad = ui.control("touch", pos=[5000, 1])
    assert bad["ok"] is False and bad["error"].startswith("pos: expected [x, y] inside")

    idle = ui.wait_for("the idle screen after the time ran out", lambda d: d["screen"] ==
                       "idle", 30)
    assert idle["timeout_warning"] == ""
    assert rig.state()["receipt_pending"] is None


@pytest.mark.rig(speed=1.0, poll_interval_s=0.5,
                 extra={"ui": {"receipt_timeout_s": RECEIPT_TIMEOUT_S}})
def test_the_warning_banner_fits_in_every_language(rig, ui_process):
    ui = ui_process(rig, size="800x480")
    ui.wait_for("the idle screen", lambda d: d["screen"] == "idle", 15)
    session_closed(rig)
    problems: list[str] = []
    for language in LANGUAGES:
        ui.press(f"lang_{language}")
        dump = ui.wait_for(f"the warning in {language}", lambda d, lang=language: (
            d["screen"] == "receipt" and d["language"] == lang and d["timeout_warning"]), 30)
        ui.control("touch", pos=[400, 460])  # keep it for the next language
        layout = ui.cmd("dump", layout=True)
        if layout["timeout_warning"]:
            banner = [w for w in layout["layout"] if w.get("text") == layout["timeout_warning"]]
            assert banner, layout["timeout_warning"]
            assert banner[0]["font_size"] >= 0.04 * 480 - 0.5
            top_bar = next(w for w in layout["layout"] if w["id"] == "top_bar")
            # over the top bar only: nothing of the receipt (its total first) is hidden
            assert banner[0]["pos"][1] >= top_bar["pos"][1] - 0.5, (language, banner[0])
        problems += [f"{language}: {problem}" for problem in layout_problems(layout)]
        template = re.escape(tr("timeout_warning", language, seconds=999))
        assert re.fullmatch(template.replace("999", r"\d+"), dump["timeout_warning"])
    assert problems == []
