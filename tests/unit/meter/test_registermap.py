import tomllib
from decimal import Decimal

import pytest

from drivers.meter.registermap import (
    MeterMapError,
    available_models,
    load_model,
    parse_model,
    plan_blocks,
)

SHIPPED = ["acrel_djsf1352", "carlo_gavazzi_em340", "carlo_gavazzi_em580", "eastron_sdm630"]


def test_every_required_model_ships():
    assert set(SHIPPED) <= set(available_models())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_loads_with_import_energy(name):
    model = load_model(name)
    assert model.registers["energy_import_wh"].function in (3, 4)
    for block in plan_blocks(model.snapshot_registers(), model.max_block_registers):
        assert block.count <= model.max_block_registers


def test_sdm630_snapshot_is_one_block_read():
    model = load_model("eastron_sdm630")
    blocks = plan_blocks(model.snapshot_registers(), model.max_block_registers)
    assert [(b.function, b.address, b.count) for b in blocks] == [(4, 0x0000, 0x4C)]


def test_em340_respects_its_50_register_limit():
    model = load_model("carlo_gavazzi_em340")
    blocks = plan_blocks(model.snapshot_registers(), model.max_block_registers)
    assert len(blocks) == 2
    assert all(b.count <= 50 for b in blocks)


def test_acrel_reads_decimal_point_registers_in_the_same_block():
    model = load_model("acrel_djsf1352")
    blocks = plan_blocks(model.snapshot_registers(), model.max_block_registers)
    assert len(blocks) == 1
    names = {r.name for r in blocks[0].registers}
    assert {"dp_voltage", "dp_current", "dp_power"} <= names
    # value = raw * 10^(dp - 3): dp 2 -> x0.1
    assert model.registers["current_a"].exponent(2) == -1


def test_unknown_model_lists_the_shipped_ones():
    with pytest.raises(MeterMapError, match=r"unknown meter model 'nope'.*eastron_sdm630"):
        load_model("nope")


def test_map_from_path(tmp_path):
    path = tmp_path / "my_meter.toml"
    path.write_text(MINIMAL)
    model = load_model(str(path))
    assert model.key == "my_meter"
    assert model.registers["energy_import_wh"].scale == Decimal("0.1")


MINIMAL = """
[meter]
name = "Test meter"
kind = "DC"
[registers.energy_import_wh]
function = 3
address = 10
type = "u32"
scale = "0.1"
"""


def _parse(extra: str):
    return parse_model(tomllib.loads(MINIMAL + extra), key="t", source="t.toml")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[registers.power_w]\nfunction = 5\naddress = 1\ntype = 'u16'\n",
         r"registers.power_w.function = 5: expected one of 3, 4"),
        ("[registers.power_w]\nfunction = 3\naddress = 1\ntype = 'u8'\n",
         r"registers.power_w.type = 'u8': expected one of u16"),
        ("[registers.power_w]\nfunction = 3\naddress = 70000\ntype = 'u16'\n",
         r"registers.power_w.address = 70000: expected an integer from 0 to 65535"),
        ("[registers.power_w]\nfunction = 3\naddress = 1\ntype = 'u16'\nscal = '1'\n",
         r"registers.power_w.scal: unknown key"),
        ("[registers.power_w]\nfunction = 3\naddress = 1\ntype = 'u16'\nscale = 'x'\n",
         r"registers.power_w.scale = 'x': expected a decimal number"),
        ("[registers.dp]\nfunction = 3\naddress = 1\ntype = 'u16'\n",
         r"registers.dp.sim_value is required"),
        ("[registers.power_w]\nfunction = 3\naddress = 1\ntype = 'u16'\ndecimal_point = 'x'\n",
         r"registers.power_w.decimal_point = 'x': expected the name of an auxiliary register"),
        ("[registers.power_w]\nfunction = 3\naddress = 1\ntype = 'ascii'\ncount = 2\n",
         r"a measured quantity must be numeric"),
    ],
)
def test_invalid_map_names_file_key_and_allowed(extra, message):
    with pytest.raises(MeterMapError, match=r"t\.toml: .*" + message):
        _parse(extra)


def test_map_without_import_energy_is_rejected():
    with pytest.raises(MeterMapError, match="energy_import_wh is required"):
        parse_model({"meter": {"name": "x", "kind": "AC"}, "registers": {
            "power_w": {"function": 3, "address": 0, "type": "u16"}}}, "t", "t.toml")


def test_planner_splits_by_function_code_and_span():
    model = _parse(
        "[registers.power_w]\nfunction = 4\naddress = 0\ntype = 'u16'\n"
        "[registers.voltage_v]\nfunction = 3\naddress = 200\ntype = 'u16'\n"
    )
    blocks = plan_blocks(model.snapshot_registers(), 125)
    planned = [(b.function, b.address, b.count) for b in blocks]
    assert planned == [(3, 10, 2), (3, 200, 1), (4, 0, 1)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 300, r"unknown meter model 'aaaa.*\(300 chars\); shipped models: "),
        ("/proc/self/mem", "cannot read the map"),
        ("/" + "k" * 300 + ".toml", "File name too long"),
        ("/a\x00b.toml", "meter map file"),
        ("/dev/null", "not found"),
    ],
)
def test_odd_names_and_paths_are_map_errors(name, message):
    with pytest.raises(MeterMapError, match=message):
        load_model(name)


def test_shipped_model_path_takes_names_only():
    from drivers.meter.registermap import shipped_model_path

    assert shipped_model_path("eastron_sdm630").name == "eastron_sdm630.toml"
    for name in ("../models/eastron_sdm630", "eastron_sdm630.toml", "Eastron_SDM630", ""):
        with pytest.raises(MeterMapError, match="shipped models: acrel_djsf1352"):
            shipped_model_path(name)
