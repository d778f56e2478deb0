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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("tcp://[::1:5020", r"bad charger URL 'tcp://\[::1:5020': Invalid IPv6 URL"),
        ("tcp://io:0", "bad port in charger URL"),
        ("tcp://io:", "bad port in charger URL"),
        ("tcp://io:502/x", "nothing may follow HOST:PORT"),
        ("tcp://u:p@io:502", "no user name or password"),
        ("tcp://i o:502", "bad host 'i o' in charger URL"),
        ("tcp://io:502\n", "control or unprintable characters"),
        ("tcp://" + "a" * 2000, r"at most 1024 characters"),
        ("rtu:///dev/ttyUSB1?baud=" + "9" * 900, "baud='9999.*in charger URL"),
        ("modbus://io", "unsupported charger URL 'modbus://io'"),
    ],
)
def test_charger_urls_name_the_charger_and_never_raise_anything_else(url, message):
    from drivers.charger import open_charger
    from drivers.meter.transport import parse_modbus_url

    with pytest.raises(TransportError, match=message):
        parse_modbus_url(url, "charger")
    with pytest.raises(TransportError, match=message):
        open_charger("modbus_coil", url)


def test_ipv6_and_host_names_still_parse():
    from drivers.meter.transport import parse_modbus_url

    assert parse_modbus_url("tcp://[::1]:5020") == TcpTransport("::1", 5020)
    assert parse_modbus_url("tcp://[fe80::1%eth0]") == TcpTransport("fe80::1%eth0", 502)
    assert parse_modbus_url("tcp://io-1.local:1502/") == TcpTransport("io-1.local", 1502)
