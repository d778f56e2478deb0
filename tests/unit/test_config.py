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
        ('[station]\nid = "x"\n[meter]\nurl = "http://meter"\n', "unsupported meter URL"),
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
