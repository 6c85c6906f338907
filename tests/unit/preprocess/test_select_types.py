"""-t resolution: packed types come with their host, samples bring the type they sample."""

import pytest

from cs_sync.core.errors import ConfigError
from cs_sync.inputs.config import load_config, parse_config
from cs_sync.preprocess.engine import select_types

CFG = load_config(None)


@pytest.mark.parametrize(
    "requested,out,scanned",
    [
        ((), ["BB", "IM", "Source", "VM", "SAMPLE_BB"], ["BB", "IM", "Source", "VM"]),
        (("Source",), ["Source", "VM"], ["Source", "VM"]),
        (("VM",), ["Source", "VM"], ["Source", "VM"]),
        (("SAMPLE_BB",), ["SAMPLE_BB"], ["BB"]),
        (("SAMPLE_BB", "IM"), ["IM", "SAMPLE_BB"], ["BB", "IM"]),
        (("IM", "IM", "BB"), ["BB", "IM"], ["BB", "IM"]),
    ],
)
def test_select_types(requested, out, scanned):
    _, got_out, got_scanned = select_types(CFG, requested)
    assert (got_out, got_scanned) == (out, scanned)


def test_sample_bb_is_accepted_even_when_the_config_does_not_define_it():
    cfg = parse_config({
        "BB": {"where": "Runs/{fault_name}", "pattern": ["*/BB/Acc/BB.bin"]},
        "Src": {"where": "S/{fault_name}", "pattern": ["*.info"]},
        "V": {"where": "V/{fault_name}", "pattern": ["x"], "pack_into": "Src"},
    })
    assert "SAMPLE_BB" not in cfg.types  # new keys: no legacy defaults
    cfg2, out, scanned = select_types(cfg, ("SAMPLE_BB",))
    assert (out, scanned) == (["SAMPLE_BB"], ["BB"])
    assert cfg2.types["SAMPLE_BB"].sample_of == "BB"
    assert select_types(cfg, ())[1] == ["BB", "Src", "V"]
    assert select_types(cfg, ("V",))[1] == ["Src", "V"]


def test_unknown_type_names_the_choices():
    with pytest.raises(ConfigError) as ei:
        select_types(CFG, ("LF",))
    assert ei.value.one_line() == (
        "-t 'LF' is not a data type of sync_patterns.yaml (choose from BB, IM, Source, VM, SAMPLE_BB)")
