from pathlib import Path

import pytest
import yaml

from cs_sync.core.errors import ConfigError
from cs_sync.inputs.config import EXPECT_EVENTS, EXPECT_ONE, EXPECT_RELS, load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_config_is_todays_format_and_package_copy_matches():
    assert (ROOT / "sync_patterns.yaml").read_text() == (ROOT / "cs_sync" / "inputs" / "sync_patterns.yaml").read_text()
    cfg = load_config()
    assert cfg.set_types() == ["BB", "IM", "Source"]
    assert cfg.host_of("VM") == "Source"
    assert cfg.packed_with("Source") == ["Source", "VM"]
    assert cfg.types["SAMPLE_BB"].sample_of == "BB"


def test_expected_counts_defaults():
    cfg = load_config()
    bb = cfg.types["BB"].patterns[0]
    assert bb.expect == EXPECT_EVENTS
    assert bb.expected(n_rels=5, has_median=True) == 6
    assert bb.expected(n_rels=5, has_median=False) == 5
    vm = {p.glob: p for p in cfg.types["VM"].patterns}
    assert vm["vm_params.yaml"].expect == EXPECT_ONE
    pertb = vm["{fault_name}_REL*.pertb.csv"]
    assert pertb.optional and pertb.expect == EXPECT_RELS
    assert pertb.expected(n_rels=5, has_median=True) == 5


def test_expect_override_and_new_keys():
    cfg = parse_config(
        {
            "A": {"where": "x/{fault_name}", "pattern": [{"glob": "*.dat", "expect": 1}, {"glob": "*.b", "expect": "rels"}]},
            "B": {"where": "y/{fault_name}", "pattern": ["*.c"], "pack_into": "A"},
            "S": {"sample_of": "A"},
        }
    )
    assert cfg.types["A"].patterns[0].expected(10, True) == 1
    assert cfg.types["A"].patterns[1].expect == EXPECT_RELS
    assert cfg.set_types() == ["A"]
    assert cfg.packed_with("A") == ["A", "B"]
    assert "SAMPLE_BB" not in cfg.types  # new keys given: no legacy defaults


@pytest.mark.parametrize(
    "data,needle",
    [
        ([1, 2], "expected a mapping"),
        ({"BB": {"pattern": ["x"]}}, "missing 'where'"),
        ({"BB": {"where": "Runs/{fault_name}"}}, "missing 'pattern'"),
        ({"BB": {"where": "Runs/{fault}", "pattern": ["x"]}}, "unknown placeholder {fault}"),
        ({"BB": {"where": "../{fault_name}", "pattern": ["x"]}}, "escapes CS_ROOT"),
        ({"BB": {"where": "Runs", "pattern": ["../../etc/*"]}}, "escapes CS_ROOT"),
        ({"BB": {"where": "Runs", "pattern": ["x"], "pack_into": "Nope"}}, "not a data type"),
        ({"BB": {"where": "Runs", "pattern": [{"glob": "x", "expect": "lots"}]}}, "expect"),
    ],
)
def test_bad_configs(data, needle):
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "cfg.yaml")
    assert needle in ei.value.one_line()
    assert ei.value.one_line().startswith("cfg.yaml")


def test_malformed_yaml_names_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("BB:\n  where: [unclosed\n")
    with pytest.raises(ConfigError, match=r"c.yaml: line \d+: malformed YAML"):
        load_config(p)


def test_roundtrip_of_shipped_yaml_structure():
    data = yaml.safe_load((ROOT / "sync_patterns.yaml").read_text())
    assert set(data) == {"BB", "IM", "Source", "VM"}


def test_labels_are_the_older_scripts_column_names():
    cfg = load_config()
    labels = {t: [p.label for p in cfg.types[t].patterns] for t in ("BB", "IM", "VM")}
    assert labels == {
        "BB": ["*/BB/Acc/BB.bin"],
        "IM": ["*/IM_calc/**.csv"],  # '{fault_name}*' -> '**', as pat.format(fault_name="*") gave
        "VM": ["vm_params.yaml", "nzvm.cfg", "$*_REL*.pertb.csv"],  # '$' kept
    }


@pytest.mark.parametrize(
    "data",
    [
        {"BB": {"where": "Runs/_old/{fault_name}", "pattern": ["x"]}},
        {"BB": {"where": "Runs/{fault_name}", "pattern": ["_trash/*/BB.bin"]}},
    ],
)
def test_underscore_folders_in_config_are_rejected(data):
    with pytest.raises(ConfigError, match="starts with '_'"):
        parse_config(data, "cfg.yaml")


def test_underscore_file_names_are_allowed():
    cfg = parse_config({"BB": {"where": "Runs/{fault_name}", "pattern": ["*/_meta.json"]}})
    assert cfg.types["BB"].patterns[0].glob == "*/_meta.json"
