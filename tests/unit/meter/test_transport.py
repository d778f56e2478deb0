import pytest

from drivers.meter.transport import RtuTransport, TcpTransport, TransportError, parse_meter_url


def test_tcp_url():
    assert parse_meter_url("tcp://10.0.0.5:5020") == TcpTransport("10.0.0.5", 5020)
    assert parse_meter_url("tcp://meter.local") == TcpTransport("meter.local", 502)


def test_rtu_url_with_options():
    t = parse_meter_url("rtu:///dev/ttyUSB0?baud=19200&parity=e&stopbits=2")
    assert t == RtuTransport("/dev/ttyUSB0", 19200, "E", 2, 8)


def test_rtu_url_defaults_to_model_settings():
    assert parse_meter_url("rtu:///dev/ttyAMA0") == RtuTransport("/dev/ttyAMA0")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("udp://1.2.3.4:502", "unsupported meter URL"),
        ("tcp://:502", "no host"),
        ("tcp://host:99999", "bad port"),
        ("rtu://dev/ttyUSB0", "no device path"),
        ("rtu:///dev/ttyUSB0?baud=1234", "baud='1234'"),
        ("rtu:///dev/ttyUSB0?parity=X", "parity='X'"),
        ("rtu:///dev/ttyUSB0?stopbits=3", "stopbits='3'"),
        ("rtu:///dev/ttyUSB0?speed=9600", "unknown option 'speed'"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, message):
    with pytest.raises(TransportError, match=message):
        parse_meter_url(url)
