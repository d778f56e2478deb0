"""The touchscreen app (Kivy): shows the daemon's local API to the driver.

Provides `EvtermApp(socket_path, control_path=None, language=None)`. The layout is in
ui/evterm.kv beside this file; this module only moves data:

    ApiClient thread --message--> Clock (Kivy thread) --> ui.messages.apply_message(model)
        --> requests it returns are sent --> ui.view.build_view(model) --> widgets

Every widget whose id is in ui.widgets.TOP_BAR / SCREEN_WIDGETS / REPORT_WIDGETS gets its
text from the View; price and receipt lines are lists of Labels; the QR codes, the
progress bar, the offline badge and the active buttons follow the View too. The view is
rebuilt at most once per frame for a burst of messages and once per second for the
countdowns. Buttons (ui.buttons.press) send intents (`language`, `stop`, `ack_receipt`,
`report_problem`); the app has no business logic and never sees card data. The
technician's screens (PIN pad, service menu: ui/service_view.py) work the same way;
their requests carry the login token, which only the model holds; a tick once a second
sends what is due (the diagnostics refresh). On those screens the language bar is
hidden and inactive buttons are dimmed rather than hidden (a PIN pad with holes would
confuse).

Every size derives from `u` = 1 % of the window height, so 800x480 and 1280x800 show the
same layout. With `control_path` the automation socket of ui/control.py is served. After
the first frame the app prints `{"event": "ready", ...}` on stdout (as every evterm
process does). When the daemon is away the ApiClient reconnects and the screen says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from functools import partial
from importlib.resources import files
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, ObjectProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

import ui.accessibility as ui_access
import ui.bar_plot
import ui.buttons as ui_buttons
import ui.card_hold as ui_card_hold
import ui.client as ui_client
import ui.messages as ui_messages
import ui.service_model as ui_staff
import ui.timeouts_widget  # noqa: F401  (registers TimeoutBanner for evterm.kv)
import ui.vat_entry as ui_vat
import ui.widgets as ui_widgets
from ui import qr  # noqa: F401  (registers QrCode with the Factory for evterm.kv)
from ui import theme as ui_theme
from ui.control import Automation, ControlServer, FrameStats
from ui.i18n import LANGUAGES
from ui.model import UiModel, View
from ui.speech_app import SpeechUi
from ui.view import build_view, keep_units

KV_FILE = Path(str(files("ui").joinpath("evterm.kv")))  # package data
# the normal palette of ui/theme.py: the Python defaults of the style classes below
# (evterm.kv sets every colour from app.theme, which follows the display modes)
BACKGROUND = ui_theme.NORMAL.BG
PANEL = ui_theme.NORMAL.PANEL
RAISED = ui_theme.NORMAL.RAISED
TEXT = ui_theme.NORMAL.TEXT
ACCENT = ui_theme.NORMAL.ACCENT
REFRESH_S = 1.0  # countdowns, elapsed time, feedback expiry, the service menu's refresh
DIMMED = 0.3  # opacity of an inactive button on the technician's screens
STAFF_BUTTON_PREFIXES = ("pin_", "svc_")
SERVICE_TABS = "svc_tabs"  # the service menu's own ScreenManager (one Screen per tab)

# Widgets that are not text fields of the View but are driven by it.
PRICE_BOX, RECEIPT_BOX = "price_lines", "receipt_lines"
QR_WIDGETS = {"idle": "idle_qr", "receipt": "receipt_qr", "signed_data": "signed_qr"}
PROGRESS_BAR = "progress_bar"


class Meter(Widget):
    """A progress bar (0..1) drawn in evterm.kv."""

    value = NumericProperty(0.0)


# Style classes: the properties the kv rules of the same name use (drawn in evterm.kv).
class Card(BoxLayout):
    fill = ColorProperty(PANEL)


class FlatButton(Button):
    fill = ColorProperty(RAISED)
    ink = ColorProperty(TEXT)


class LangButton(FlatButton):
    selected = BooleanProperty(False)


class Figure(Label):
    """A number on one line: `fit` is the font size from `big` (in u) down to what fits."""

    big = NumericProperty(10.0)
    fit = NumericProperty(10.0)


class Sign(Label):
    ring = ColorProperty(ACCENT)


class ReportPanel(FloatLayout):
    """The "report a problem" panel over everything but the language bar: modal, it
    swallows every touch it does not use."""

    def on_touch_down(self, touch: Any) -> bool:
        super().on_touch_down(touch)
        return True

    def on_touch_move(self, touch: Any) -> bool:
        super().on_touch_move(touch)
        return True

    def on_touch_up(self, touch: Any) -> bool:
        super().on_touch_up(touch)
        return True


class EvtermRoot(FloatLayout):
    """Top bar, the ScreenManager, the language bar; the report panel is added on top."""

    report_open = BooleanProperty(False)
    staff = BooleanProperty(False)  # a technician's screen: the language bar is hidden
    keyboard = BooleanProperty(False)  # the VAT number keyboard: the same


class EvtermApp(App):
    """The touchscreen. `language`: ask the daemon for this screen language once, when
    first connected (the daemon owns the language; see docs/local-api.md)."""

    u = NumericProperty(4.8)  # 1 % of the window height in pixels
    # display modes (ui/accessibility.py, ui/theme.py): the palette evterm.kv reads as
    # app.theme.NAME, the unit of driver texts (fs = u, x1.25 in large text), the main
    # figures' factor (x2 in large text) and the smallest touch target (15 mm)
    theme = ObjectProperty(ui_theme.NORMAL, rebind=True)  # kv rules follow a new palette
    large = BooleanProperty(False)
    fs = NumericProperty(4.8)
    # the unit of the texts that keep their size (top bar, technician's screens): set
    # after fs and dispatched again, so their rules win over the class rules on fs
    fu = NumericProperty(4.8)
    figure_scale = NumericProperty(1.0)
    touch = NumericProperty(4.8 * ui_theme.TOUCH_U)

    def __init__(self, socket_path: str, control_path: str | None = None,
                 language: str | None = None, speech_output: str | None = None,
                 modes: tuple[bool, bool] = (False, False),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = "evterm"
        self.socket_path = socket_path
        self.control_path = control_path
        self.start_language = language
        self.model = UiModel(modes=ui_access.defaults(*modes))
        self.view: View | None = None
        self.widgets: dict[str, Widget] = {}
        self.buttons: dict[str, Button] = {}
        self.frames = FrameStats()
        self.client: Any = None
        self.control: ControlServer | None = None
        self.panel: ReportPanel | None = None
        self._line_cache: dict[str, tuple[str, ...]] = {}
        self._show_trigger = Clock.create_trigger(self.refresh, 0)
        self._language_sent = False
        self.speech_output = speech_output  # ui/speech.py: aplay, espeak, wav:DIR, none
        self.speech: SpeechUi | None = None
        self.banner: Any = None  # ui/timeouts_widget.TimeoutBanner, over the screen

    # ---- build ---------------------------------------------------------------------------

    def load_kv(self, filename: str | None = None) -> bool:
        """evterm.kv beside this module, loaded once (App's own lookup is bypassed)."""
        if str(KV_FILE) not in Builder.files:
            Builder.load_file(str(KV_FILE))
        return True

    def build(self) -> Widget:
        Window.clearcolor = BACKGROUND
        Window.bind(height=self._on_height)
        self._on_height(Window, Window.height)
        root = Factory.EvtermRoot()
        self.panel = Factory.ReportPanel()
        self._collect(root)
        self.frames.attach(Window, on_first_frame=self._first_frame)
        self.client = ui_client.ApiClient(self.socket_path, self._message_from_thread,
                                          self._connected_from_thread)
        if self.control_path:
            self.control = ControlServer(self.control_path, Automation(self).execute)
            self.control.start()
        Clock.schedule_interval(self.tick, REFRESH_S)
        self.root = root
        self.speech = SpeechUi(self, self.speech_output)
        root.bind(size=self._place_panel, pos=self._place_panel)
        root.ids.bottom_bar.bind(size=self._place_panel, pos=self._place_panel)
        self._place_panel()
        self.banner = Factory.TimeoutBanner()
        Window.bind(on_touch_down=self._on_touch_anywhere)
        root.ids.top_bar.bind(pos=self._place_banner, size=self._place_banner)
        self.banner.bind(texture_size=self._place_banner)
        self._place_banner()
        self.refresh()
        return root

    def _collect(self, root: Widget) -> None:
        """Every widget with an id in the kv rules, by id (one namespace for the app)."""
        scopes: list[Mapping[str, Widget]] = [root.ids, self.panel.ids]
        scopes += [screen.ids for screen in root.ids.sm.screens]
        for ids in scopes:
            for name, widget in ids.items():
                if name in self.widgets and self.widgets[name] is not widget:
                    raise RuntimeError(f"evterm.kv: widget id {name!r} is used twice")
                self.widgets[name] = widget
        expected = set(ui_widgets.TOP_BAR) | set(ui_widgets.REPORT_WIDGETS)
        for names in ui_widgets.SCREEN_WIDGETS.values():
            expected |= set(names)
        expected |= {PRICE_BOX, RECEIPT_BOX, PROGRESS_BAR, SERVICE_TABS, *QR_WIDGETS.values(),
                     *ui_staff.PLOT_WIDGETS}
        missing = sorted(expected - set(self.widgets))
        if missing:
            raise RuntimeError(f"evterm.kv: no widget for the ids {missing}")
        screens = {screen.name for screen in root.ids.sm.screens}
        if screens != set(ui_widgets.SCREENS):
            raise RuntimeError(f"evterm.kv: screens {sorted(screens)} != {ui_widgets.SCREENS}")
        self.buttons = {name: w for name, w in self.widgets.items()
                        if isinstance(w, Button) and name in expected}

    def _on_height(self, _window: Any, height: float) -> None:
        self.u = max(height, 240) / 100.0
        self._apply_modes(self.large, self.theme is ui_theme.HIGH_CONTRAST)

    def _apply_modes(self, large_text: bool, high_contrast: bool) -> None:
        """Large text and high contrast as the view says (the kv rules follow)."""
        self.large = large_text
        self.fs = self.u * (ui_theme.TEXT_SCALE_LARGE if large_text else 1.0)
        self.figure_scale = ui_theme.FIGURE_SCALE_LARGE if large_text else 1.0
        self.fu = self.u
        self.property("fu").dispatch(self)
        self.touch = self.u * ui_theme.TOUCH_U
        self.theme = ui_theme.palette(high_contrast)
        Window.clearcolor = self.theme.BG

    def _first_frame(self, first_frame_s: float | None) -> None:
        ready = {"event": "ready", "control": self.control_path, "socket": self.socket_path,
                 "size": list(Window.size), "first_frame_s": first_frame_s}
        print(json.dumps(ready), flush=True)

    def on_stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.control is not None:
            self.control.close()
        if self.speech is not None:
            self.speech.close()

    # ---- messages from the daemon (ApiClient thread -> Kivy thread) --------------------

    def _message_from_thread(self, message: dict[str, Any]) -> None:
        Clock.schedule_once(partial(self.on_message, message), 0)

    def _connected_from_thread(self, connected: bool) -> None:
        Clock.schedule_once(partial(self.on_connected, connected), 0)

    def on_message(self, message: dict[str, Any], _dt: float = 0) -> None:
        requests = ui_messages.apply_message(self.model, message, time.monotonic())
        if "op" in message:
            self.frames.replied(str(message["op"]))
        for request in requests:
            fields = dict(request)
            self.send(str(fields.pop("op")), **fields)
        self._show_trigger()

    def on_connected(self, connected: bool, _dt: float = 0) -> None:
        ui_messages.set_connected(self.model, connected)
        if connected and self.start_language and not self._language_sent:
            self._language_sent = True
            self.model.language = self.start_language
            self.send("language", language=self.start_language)
        self._show_trigger()

    def send(self, op: str, **fields: Any) -> None:
        self.frames.request_sent(op)
        if self.client is not None:
            self.client.send(op, **fields)

    # ---- buttons ----------------------------------------------------------------------

    def on_button(self, name: str) -> None:
        """A button was released (touch or the automation socket): ui.buttons.press
        changes the model and says what to send; the screen answers at once."""
        for request in ui_buttons.press(self.model, name, time.monotonic()):
            fields = dict(request)
            self.send(str(fields.pop("op")), **fields)
        self.refresh()

    def _on_touch_anywhere(self, _window: Any, _touch: Any) -> bool:
        """Every touch, before any widget sees it: the screen's time limits start again
        (ui.buttons.touch); the touch goes on to the widgets."""
        for request in ui_buttons.touch(self.model, time.monotonic()):
            fields = dict(request)
            self.send(str(fields.pop("op")), **fields)
        self._show_trigger()
        return False

    def tick(self, _dt: float = 0) -> None:
        """Once a second: what is due (the service menu's refresh), then the screen."""
        for request in ui_buttons.tick(self.model, time.monotonic()):
            fields = dict(request)
            self.send(str(fields.pop("op")), **fields)
        self.refresh()

    # ---- view -> widgets ----------------------------------------------------------------

    def refresh(self, _dt: float = 0) -> None:
        started = time.perf_counter()
        view = build_view(self.model, time.monotonic())
        if view != self.view:
            self.show(view)
            self.view = view
        if self.speech is not None:
            self.speech.shown(view)
        self.frames.shown(view, (time.perf_counter() - started) * 1000.0)

    def show(self, view: View) -> None:
        root = self.root
        if (view.large_text, view.high_contrast) != (self.large, self.theme.name != "normal"):
            self._apply_modes(view.large_text, view.high_contrast)
        manager = root.ids.sm
        texts = view.texts
        for name in ui_widgets.TOP_BAR:
            self._set_text(name, texts.get(name, ""))
        for name in ui_widgets.SCREEN_WIDGETS.get(view.screen, ()):
            self._set_text(name, texts.get(name, ""))
        if view.report_open:
            for name in ui_widgets.REPORT_WIDGETS:
                self._set_text(name, texts.get(name, ""))
        for name, button in self.buttons.items():
            active = name in view.buttons
            button.disabled = not active
            hidden = DIMMED if name.startswith(STAFF_BUTTON_PREFIXES) else 0.0
            button.opacity = 1.0 if active else hidden
        for code in LANGUAGES:
            self.widgets[f"lang_{code}"].selected = code == view.language
        for name in ui_card_hold.BUDGET_BUTTONS:  # the budget in force (its words say it too)
            self.widgets[name].selected = name == view.budget_selected
        self.widgets["badge_offline"].opacity = 1.0 if view.offline else 0.0
        self._set_lines(PRICE_BOX, view.price_lines, "PriceLine")
        self._set_lines(RECEIPT_BOX, view.receipt_lines, "ReceiptLine")
        for screen, name in QR_WIDGETS.items():
            self.widgets[name].data = view.qr if view.screen == screen else None
        if view.screen == "authorising":
            self._show_tone(view.tone)
        elif view.screen in ui_staff.STAFF_SCREENS:
            self._show_staff(view)
        root.staff = view.screen in ui_staff.STAFF_SCREENS
        root.keyboard = view.screen == ui_vat.VAT_SCREEN
        bar = self.widgets[PROGRESS_BAR]
        bar.value = view.progress or 0.0
        bar.opacity = 0.0 if view.progress is None else 1.0
        if manager.current != view.screen:
            manager.current = view.screen
        self._show_panel(view.report_open)
        self._show_banner(view.timeout_warning)

    def _show_tone(self, tone: str) -> None:
        """Approved in green, refused in red with a "!" sign instead of the card waves,
        "tap again" and "in use" in amber; the words say the same."""
        colour = self.tone_colour(tone)
        self.widgets["auth_title"].color = colour
        refused = tone in ("refused", "attention")
        self.widgets["auth_waves"].opacity = 0.0 if refused else 1.0
        sign = self.widgets["auth_sign"]
        sign.opacity = 1.0 if refused else 0.0
        sign.ring = colour

    def tone_colour(self, tone: str) -> Any:
        """Approved green, "tap again" amber, refused red, in the palette shown."""
        palette = self.theme
        return {"ok": palette.ACCENT, "attention": palette.AMBER,
                "refused": palette.ALERT}.get(tone, palette.TEXT)

    def _show_staff(self, view: View) -> None:
        """The message colour of the PIN pad / the status line, and the service tab."""
        colour = self.tone_colour(view.tone)
        self.widgets["pin_message" if view.screen == "pin" else "svc_status"].color = colour
        if view.screen == "service":
            for tab in ui_staff.SERVICE_TABS:
                self.widgets[f"svc_tab_{tab}"].selected = tab == view.service_tab
            tabs = self.widgets[SERVICE_TABS]
            if view.service_tab and tabs.current != view.service_tab:
                tabs.current = view.service_tab
            for plot in view.plots:  # the "30 days" tab (ui/service_plots.py)
                widget = self.widgets[f"svc_plot_{plot.kind}"]
                widget.values, widget.max_text = list(plot.values), plot.max_text
                widget.dates = [list(date) for date in plot.dates]

    def _set_text(self, name: str, text: str) -> None:
        if self.large and name in ui_access.FIGURES:  # they wrap: never inside "12 kWh"
            text = keep_units(text)
        widget = self.widgets.get(name)
        if widget is not None and widget.text != text:
            widget.text = text

    def _set_lines(self, box_name: str, lines: Sequence[str], kind: str) -> None:
        lines = tuple(lines)
        if self._line_cache.get(box_name) == lines:
            return
        self._line_cache[box_name] = lines
        box = self.widgets[box_name]
        labels = list(reversed(box.children))
        for index, text in enumerate(lines):
            if index < len(labels):
                labels[index].text = text
            else:
                box.add_widget(getattr(Factory, kind)(text=text))
        for label in labels[len(lines):]:
            box.remove_widget(label)

    def _show_panel(self, open_: bool) -> None:
        panel = self.panel
        assert panel is not None
        if open_ and panel.parent is None:
            self.root.add_widget(panel)
        elif not open_ and panel.parent is not None:
            panel.parent.remove_widget(panel)
        self.root.report_open = open_

    def _show_banner(self, text: str) -> None:
        """The time-limit warning over the screen, on top of everything, or none."""
        banner = self.banner
        banner.text = text
        if text and self.root.children[0] is not banner:  # over the report panel too
            if banner.parent is not None:
                banner.parent.remove_widget(banner)
            self.root.add_widget(banner)
        elif not text and banner.parent is not None:
            banner.parent.remove_widget(banner)

    def _place_banner(self, *_args: object) -> None:
        """The banner over the top bar (station, operator, hotline: nothing of the screen
        itself is hidden), the window's width, taller when its text needs it."""
        if self.banner is None or self.root is None:
            return
        bar = self.root.ids.top_bar
        self.banner.width = self.root.width
        self.banner.height = max(self.banner.texture_size[1], bar.height)
        self.banner.pos = (self.root.x, self.root.top - self.banner.height)

    def _place_panel(self, *_args: object) -> None:
        """The panel covers everything but the language bar (languages stay usable)."""
        bar = self.root.ids.bottom_bar
        self.panel.size_hint = (1, None)
        self.panel.pos = (self.root.x, bar.top)
        self.panel.size = (self.root.width, self.root.top - bar.top)

    # ---- what the automation socket reads ----------------------------------------------

    def visible_ids(self) -> tuple[str, ...]:
        """Widget ids the driver can see now: the top bar, the current screen, the panel."""
        screen = self.root.ids.sm.current
        if screen in ui_staff.STAFF_SCREENS:  # no language bar; the service tab shown
            top = tuple(name for name in ui_widgets.TOP_BAR
                        if name != "report" and not name.startswith("lang_"))
            if screen == "pin":
                return top + ui_staff.PIN_WIDGETS
            tab = self.widgets[SERVICE_TABS].current
            return top + ui_staff.SERVICE_COMMON + tuple(
                ui_staff.SERVICE_TAB_WIDGETS.get(tab, ()))
        if screen == ui_vat.VAT_SCREEN:  # no language bar, no report button
            return tuple(name for name in ui_widgets.TOP_BAR if name != "report"
                         and not name.startswith("lang_")) + ui_vat.VAT_WIDGETS
        names = ui_widgets.TOP_BAR + tuple(ui_widgets.SCREEN_WIDGETS.get(screen, ()))
        if self.panel is not None and self.panel.parent is not None:
            names += ui_widgets.REPORT_WIDGETS
        return names

    def active_buttons(self) -> list[str]:
        """Buttons a touch would operate now (with the panel open: its buttons and the
        language bar)."""
        if self.panel is not None and self.panel.parent is not None:
            touchable = (*ui_widgets.REPORT_WIDGETS, *(f"lang_{code}" for code in LANGUAGES))
        else:
            touchable = self.visible_ids()
        return [name for name in touchable
                if name in self.buttons and not self.buttons[name].disabled]

    def line_texts(self, box_name: str) -> list[str]:
        return [label.text for label in reversed(self.widgets[box_name].children)]

    def shown_qr(self) -> str | None:
        name = QR_WIDGETS.get(self.root.ids.sm.current)
        return None if name is None else self.widgets[name].data
