import re
from pathlib import Path

import pytest

from terminal.cli import main
from terminal.config import ConfigError, load_config, parse_config, render_reference

REPO = Path(__file__).resolve().parents[2]

GOOD = """
[station]
id = "DE*EVT*E0001*1"
operator = "Example Charging GmbH"
timezone = "Europe/Berlin"

[meter]
model = "acrel_djsf1352"
url = "rtu:///dev/ttyUSB0?baud=9600"
poll_interval_s = 0.5
"""


def write(tmp_path, text):
    path = tmp_path / "evterm.toml"
    path.write_text(text)
    return path


def test_good_config_is_typed_and_frozen(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.station.id == "DE*EVT*E0001*1"
    assert cfg.meter.poll_interval_s == 0.5
    assert cfg.meter.max_failed_polls == 3  # default
    with pytest.raises(AttributeError):
        cfg.meter.url = "tcp://x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[station]\nid = "x"\n[meter]\npoll_interval_s = 0\n',
         "meter.poll_interval_s = 0: expected a number from 0.1 to 60 s"),
        ('[station]\nid = "x"\n[meter]\nmax_failed_polls = "3"\n',
         "meter.max_failed_polls = '3': expected an integer from 1 to 100"),
        ('[station]\nid = "x"\n[meter]\npol_interval_s = 1\n',
         "meter.pol_interval_s: unknown key"),
        ('[station]\nid = "x"\n[metre]\nurl = "tcp://x"\n', r"\[metre\]: unknown section"),
        ('[station]\noperator = "ACME"\n', "station.id: required key missing"),
        ('[station]\nid = "x"\ntimezone = "Mars/Olympus"\n',
         "station.timezone = 'Mars/Olympus': an IANA time zone"),
        ('[station]\nid = "x"\n[meter]\nmodel = "abb_b23"\n', "unknown meter model 'abb_b23'"),
        ('[station]\nid = "x"\n[meter]\nurl = "http://meter"\n',
         "model 'eastron_sdm630' is a Modbus meter; expected tcp:// or rtu://"),
        ('[station]\nid = "x"\n[meter]\nurl = "ftp://meter"\n', "unsupported meter URL"),
        ('[station]\nid = "x"\n[logging]\nlevel = "LOUD"\n',
         "logging.level = 'LOUD': expected one of DEBUG, INFO, WARNING, ERROR"),
        ('[station\nid = "x"\n', "not valid TOML"),
    ],
)
def test_bad_config_names_key_value_and_allowed(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_config({"station": {}, "meter": {"timeout_s": 99, "typo": 1}})
    assert [p.split(":")[0].split(" ")[0] for p in err.value.problems] == [
        "station.id", "station.operator", "meter.typo", "meter.timeout_s"]


def test_config_check_exits_non_zero_with_the_error(tmp_path, capsys):
    path = write(tmp_path, '[station]\nid = "x"\n[meter]\nrated_power_w = -5\n')
    assert main(["config", "check", str(path)]) == 2
    assert "meter.rated_power_w = -5" in capsys.readouterr().err
    assert main(["config", "check", str(write(tmp_path, GOOD))]) == 0


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml")


def test_docs_configuration_md_is_current():
    doc = (REPO / "docs" / "configuration.md").read_text()
    hint = "regenerate: evterm config docs > docs/configuration.md"
    assert doc.strip() == render_reference().strip(), hint


def test_example_configs_are_valid():
    examples = sorted((REPO / "examples").glob("*.toml"))
    assert examples
    for path in examples:
        load_config(path)


def test_accepted_schemes_default_keeps_what_was_accepted_and_is_validated():
    from terminal.kernel.cards import parse_schemes

    station = {"id": "DE*EVT*E1", "operator": "Evterm"}
    config = parse_config({"station": station})
    assert parse_schemes(config.payment.accepted_schemes) == (
        "visa", "vpay", "mastercard", "maestro", "amex", "discover", "jcb", "unionpay",
        "interac")
    config = parse_config({"station": station,
                           "payment": {"accepted_schemes": " Girocard, visa,visa , CB"}})
    assert parse_schemes(config.payment.accepted_schemes) == ("girocard", "visa", "cb")
    for bad, why in (("visa, diners club", "unknown card scheme diners club"),
                     (" , ", "at least one card scheme")):
        with pytest.raises(ConfigError) as err:
            parse_config({"station": station, "payment": {"accepted_schemes": bad}})
        message = str(err.value)
        assert f"payment.accepted_schemes = {bad!r}: {why}" in message
        assert "a comma-separated list of: visa, vpay, mastercard, maestro, amex, discover, " \
            "jcb, unionpay, interac, girocard, cb" in message


def test_the_zvt_terminal_is_configured_and_checked(tmp_path):
    from terminal.station import card_payments

    station = {"id": "DE*EVT*E1", "operator": "Evterm", "state_dir": str(tmp_path)}
    assert parse_config({"station": station}).payment.terminal == "builtin"
    with pytest.raises(ConfigError) as err:
        parse_config({"station": station, "payment": {"terminal": "feig"},
                      "zvt": {"password": "12ab", "port": 0, "read_card_timeout_s": 999}})
    message = str(err.value)
    assert "payment.terminal = 'feig': expected one of builtin, zvt" in message
    assert "zvt.password = '12ab'" in message and "6 digits" in message
    assert "zvt.port = 0" in message and "zvt.read_card_timeout_s = 999" in message
    key = tmp_path / "token.key"
    key.write_text("ab" * 32)
    for zvt, payment, named in (({}, {"token_key_file": str(key)}, "zvt.host"),
                                ({"host": "127.0.0.1"}, {}, "payment.token_key_file")):
        config = parse_config({"station": station, "zvt": zvt,
                               "payment": {"terminal": "zvt", **payment}})
        with pytest.raises(ValueError, match=named):
            card_payments(config, "EUR", None, None, None, print)  # type: ignore[arg-type]
    config = parse_config({"station": station, "zvt": {"host": "127.0.0.1", "port": 1},
                           "payment": {"terminal": "zvt", "token_key_file": str(key)}})
    payments = card_payments(config, "EUR", None, None, None, print)  # type: ignore[arg-type]
    assert payments is not None and payments.kind == "zvt"
    assert payments.link.client.port == 1  # type: ignore[attr-defined]


# --- hostile files: every one ends in exit code 2 naming the key, never a traceback ---

BASE = '[station]\nid = "x"\noperator = "ACME"\n'


def check(tmp_path, content, capsys):
    path = tmp_path / "evterm.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    rc = main(["config", "check", str(path)])
    captured = capsys.readouterr()
    return rc, captured.err, path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (BASE.encode() + b'[meter]\nexpected_serial = "caf\xe9"\n',
         "not UTF-8 text: byte 0xe9 at line 5"),
        (BASE + '[meter]\nmodel = "' + "a" * 300 + '"\n',
         "meter.model = 'aaaa.*: the name of a shipped model"),
        (BASE + '[meter]\nmodel = "/proc/self/mem"\n',
         r"meter.model = '/proc/self/mem': the name of a shipped model \(lower-case letters, "
         r"digits and _, never a path\), one of: acrel_djsf1352, "),
        (BASE + '[meter]\nmodel = "../models/eastron_sdm630"\n', "meter.model = .*never a path"),
        (BASE + '[meter]\nurl = "tcp://[::1:5020"\n',
         r"meter.url = 'tcp://\[::1:5020': bad meter URL .*Invalid IPv6 URL"),
        (BASE + '[backend]\nkey_file = "/' + "k" * 300 + '"\n',
         "backend.key_file = '/kkk.*: an existing file .*: cannot use the path: File name too "
         "long"),
        (BASE + '[payment]\ntoken_key_file = "/' + "k/" * 2100 + '"\n',
         "payment.token_key_file = '/k/k.*: at most 4096 characters"),
        (BASE + '[backend]\noperator_key_file = "/proc/self/mem"\n',
         "backend.operator_key_file = '/proc/self/mem': .*cannot read the file: Input/output"),
        (BASE + '[session]\ntariff_file = "/dev/zero"\n',
         "session.tariff_file = '/dev/zero': the tariff file: a regular file"),
        (BASE + '[backend]\nca_file = "/a\\u0000b"\n',
         r"backend.ca_file = '/a\\x00b': text without control characters"),
        (BASE + '[charger]\nurl = "foo://x"\n', "charger.url = 'foo://x': unsupported charger URL"),
        (BASE + '[charger]\nurl = "tcp://io:0"\n', "charger.url = .*bad port in charger URL"),
        (BASE + '[meter]\nurl = "rtu:///dev/ttyUSB0?baud=' + "9" * 2000 + '"\n',
         "meter.url = .*at most 1024 characters"),
        (BASE + '[meter]\npoll_interval_s = nan\n',
         "meter.poll_interval_s = nan: expected a number"),
        (BASE + '[meter]\ntimeout_s = ' + "9" * 400 + '\n',
         "meter.timeout_s = .*expected a number"),
        (BASE + '[meter]\nunit_id = 0x' + "f" * 5000 + '\n',
         "meter.unit_id = an integer of 20000 bits: expected an integer"),
        (BASE + 'x = ' + "9" * 5000 + '\n', "not valid TOML: Exceeds the limit"),
        (BASE + 'x = ' + "[" * 100_000 + "]" * 100_000 + '\n',
         "not valid TOML: .*nested too deeply"),
        (BASE + '[ui]\nreceipt_url = "https://x/{session_id:>999999999}"\n',
         "ui.receipt_url = .*: an http\\(s\\) URL whose only placeholders are"),
        (BASE + '[backend]\nmqtt_host = "bro ker"\n', "backend.mqtt_host = 'bro ker': a host name"),
        ('station = 5\n', r"\[station\] must be a table, got 5$"),
        (BASE + '[session]\ntariff_file = "{deep}"\n',
         "session.tariff_file = .*: not a valid OCPI 2.2.1 tariff: .*nested too deeply"),
    ],
    ids=["non-utf8", "model-300-chars", "model-proc-self-mem", "model-relative-path",
         "url-unclosed-ipv6", "key-file-name-too-long", "key-file-over-4096", "key-proc-mem",
         "tariff-dev-zero", "path-with-nul", "charger-url-scheme", "charger-url-port-0",
         "url-2000-digit-baud", "nan", "float-400-digits", "int-20000-bits",
         "int-5000-digits", "nested-100000", "url-template-width", "mqtt-host-space",
         "section-not-a-table", "tariff-json-nested-100000"],
)
def test_hostile_config_exits_2_naming_the_key(tmp_path, capsys, content, message):
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000)
    if isinstance(content, str):
        content = content.replace("{deep}", str(deep))
    rc, err, path = check(tmp_path, content, capsys)
    assert rc == 2, err
    assert err.startswith(f"invalid configuration {path}:\n"), err
    assert "Traceback" not in err
    assert re.search(message, err, re.MULTILINE), err


def test_the_config_file_itself_cannot_be_read(tmp_path, capsys):
    for path, why in ((tmp_path, "cannot read the file: Is a directory"),
                      ("/dev/zero", "larger than 1048576 bytes"),
                      (tmp_path / ("x" * 300), "cannot read the file: File name too long")):
        assert main(["config", "check", str(path)]) == 2
        assert why in capsys.readouterr().err


def test_a_shipped_model_by_name_is_still_fine(tmp_path, capsys):
    for model in ("eastron_sdm630", "acrel_djsf1352"):
        rc, err, _ = check(tmp_path, BASE + f'[meter]\nmodel = "{model}"\n', capsys)
        assert rc == 0, err


# --- warnings: valid but unsafe settings ---

MQTT = BASE + '[backend]\nkind = "mqtt"\nmqtt_host = "{host}"\nmqtt_tls = {tls}\n'


@pytest.mark.parametrize(
    ("host", "tls", "warned"),
    [("broker.example.com", "false", True), ("10.1.2.3", "false", True),
     ("broker.example.com", "true", False), ("127.0.0.1", "false", False),
     ("127.0.0.53", "false", False), ("::1", "false", False), ("localhost", "false", False)],
)
def test_mqtt_without_tls_to_another_host_is_warned_about(tmp_path, capsys, host, tls, warned):
    rc, err, _ = check(tmp_path, MQTT.format(host=host, tls=tls), capsys)
    assert rc == 0
    assert ("warning: backend.mqtt_tls = false: the link to the broker "
            f"{host!r} is not encrypted" in err) is warned, err


def test_the_daemon_logs_the_warnings_at_start(tmp_path, capsys):
    path = write(tmp_path, BASE + f'state_dir = "{tmp_path / "state"}"\n'
                 + MQTT.format(host="broker.example.com", tls="false").removeprefix(BASE)
                 + '[session]\ntariff_file = "' + str(REPO / "examples/tariffs/de_dc_hpc_demo.json")
                 + '"\n')
    # --clock-speed 0 is refused once logging is set up: nothing starts
    assert main(["daemon", "--config", str(path), "--clock-speed", "0"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"WARNING evterm\.config: backend\.mqtt_tls = false: the link to the broker "
                     r"'broker\.example\.com' is not encrypted", err), err


def test_dev_free_start_is_warned_about(tmp_path, capsys):
    rc, err, _ = check(tmp_path, BASE + '[localapi]\ndev_free_start = true\n', capsys)
    assert rc == 0
    assert "warning: localapi.dev_free_start = true: DEVELOPMENT ONLY" in err, err


def test_a_fifo_or_a_device_as_a_key_file_neither_hangs_nor_fills_memory(tmp_path, capsys):
    import os

    fifo = tmp_path / "key.pem"
    os.mkfifo(fifo)
    for value in (fifo, "/dev/zero", "/dev/urandom"):
        rc, err, _ = check(tmp_path, BASE + f'[backend]\noperator_key_file = "{value}"\n',
                           capsys)
        assert rc == 2
        assert re.search(r"backend.operator_key_file = '.*': a readable PEM file", err), err
        assert "a regular file (this is not one)" in err


def test_a_signing_meter_url_is_checked_by_its_driver():
    base = {"station": {"id": "x", "operator": "o"}}
    for model, url, expected in (
        ("lem_dcbm400600", "tcp://127.0.0.1:502", "this meter speaks HTTP"),
        ("isabellenhuette_iem_dcr", "http://10.0.0.9", "add ?ci=EVSE_ID"),
        ("lem_dcbm400600", "http://10.0.0.9:80/x", "nothing may follow"),
    ):
        with pytest.raises(ConfigError, match=re.escape(expected)):
            parse_config({**base, "meter": {"model": model, "url": url}})
    parse_config({**base, "meter": {"model": "isabellenhuette_iem_dcr",
                                    "url": "http://10.0.0.9?ci=DE*EVT*E1"}})
