"""Tests of hydrology.standards: the bundled tables against DESIGN.md and the standards' text."""

from __future__ import annotations

import shutil
from importlib import resources

import pytest

from hydrology.exceptions import UnknownModelError
from hydrology.standards import (
    BUNDLED_STANDARDS,
    Standard,
    StandardsError,
    canonical_item,
    classify,
    exceeds,
    limit,
    load_standard,
)

CLASSES = ("I", "II", "III", "IV", "V")

# DESIGN.md section 4, "Standards" (GB 3838-2002 Table 1), mg/L.
DESIGN_GB3838 = {
    "DO": ("min", (7.5, 6, 5, 3, 2)),
    "NH3-N": ("max", (0.15, 0.5, 1.0, 1.5, 2.0)),
    "CODMn": ("max", (2, 4, 6, 10, 15)),
    "COD": ("max", (15, 15, 20, 30, 40)),
    "BOD5": ("max", (3, 3, 4, 6, 10)),
    "TP": ("max", (0.02, 0.1, 0.2, 0.3, 0.4)),
    "petroleum": ("max", (0.05, 0.05, 0.05, 0.5, 1.0)),
}


@pytest.mark.parametrize(
    ("item", "index"), [(item, i) for item in DESIGN_GB3838 for i in range(5)])
def test_design_gb3838_values_round_trip(item, index):
    kind, values = DESIGN_GB3838[item]
    lim = limit(item, CLASSES[index])
    # Values are stored as decimal text and parsed: exact equality is right.
    assert lim.value_g_m3 == values[index]
    assert lim.kind == kind
    assert lim.item == item and lim.water_class == CLASSES[index] and lim.unit == "mg/L"


@pytest.mark.parametrize(("water_class", "expected"), [(1, "I"), ("iii", "III"), ("3", "III"), (5, "V")])
def test_class_labels(water_class, expected):
    assert limit("DO", water_class).water_class == expected


def test_gb3838_table1_has_all_24_basic_items():
    std = load_standard("GB3838-2002")
    # GB 3838-2002 Table 1 items 1-24, plus the lake/reservoir TP values of item 8 as their own key.
    assert set(std.items) == {
        "temperature", "pH", "DO", "CODMn", "COD", "BOD5", "NH3-N", "TP", "TP-lake", "TN", "Cu", "Zn",
        "fluoride", "Se", "As", "Hg", "Cd", "Cr6", "Pb", "cyanide", "volatile-phenol", "petroleum",
        "anionic-surfactant", "sulfide", "faecal-coliform"}
    numbers = {int(r.source.rsplit("No. ", 1)[1]) for r in std.rows}
    assert numbers == set(range(1, 25))
    assert std.classes == CLASSES


@pytest.mark.parametrize(
    ("item", "values"),
    [  # GB 3838-2002 Table 1, beyond DESIGN.md (text of the standard)
        ("TP-lake", (0.01, 0.025, 0.05, 0.1, 0.2)),
        ("TN", (0.2, 0.5, 1.0, 1.5, 2.0)),
        ("Hg", (0.00005, 0.00005, 0.0001, 0.001, 0.001)),
        ("Cd", (0.001, 0.005, 0.005, 0.005, 0.01)),
        ("faecal-coliform", (200, 2000, 10000, 20000, 40000)),
    ],
)
def test_other_gb3838_items(item, values):
    assert tuple(limit(item, c).value_g_m3 for c in CLASSES) == values


def test_do_is_a_minimum():
    assert exceeds("DO", 4.9, "III")  # below the Class III minimum of 5 mg/L
    assert not exceeds("DO", 5.0, "III")
    assert not exceeds("DO", 12.0, "I")
    assert exceeds("NH3-N", 1.01, "III") and not exceeds("NH3-N", 1.0, "III")


def test_ph_range():
    lim = limit("pH", "II")
    assert lim.kind == "range" and lim.value_g_m3 == (6.0, 9.0)
    assert exceeds("pH", 5.9, "II") and exceeds("pH", 9.1, "II")
    assert not exceeds("pH", 6.0, "II") and not exceeds("pH", 7.5, "II")


def test_temperature_is_descriptive():
    with pytest.raises(StandardsError, match="no numeric limit"):
        limit("temperature", "III")


@pytest.mark.parametrize(
    ("sample", "expected_class", "deciding"),
    [
        ({"DO": 5.5, "NH3-N": 0.3}, "III", ("DO",)),  # DO 5.5: Class III; NH3-N 0.3: Class II
        ({"DO": 9.0, "NH3-N": 0.1, "COD": 12, "TP": 0.01}, "I", ("DO", "NH3-N", "COD", "TP")),
        ({"DO": 8.0, "NH3-N": 2.5}, "worse than V", ("NH3-N",)),  # 2.5 > 2.0 (Class V)
        ({"dissolved oxygen": 1.0, "ammonia": 0.1}, "worse than V", ("DO",)),  # DO below 2
        ({"CODMn": 6.0, "oil": 0.3, "pH": 7.0}, "IV", ("petroleum",)),  # 0.3 > 0.05, <= 0.5
    ],
)
def test_classify(sample, expected_class, deciding):
    result = classify(sample)
    assert result.water_class == expected_class
    assert result.deciding_items == deciding


def test_classify_reports_item_classes_and_skips_temperature():
    result = classify({"DO": 5.5, "NH3-N": 0.3, "temperature": 18.0})
    assert dict(result.item_classes) == {"DO": "III", "NH3-N": "II"}
    assert result.not_assessed == ("temperature",)
    with pytest.raises(StandardsError, match="no item with a numeric limit"):
        classify({"temperature": 18.0})


# DESIGN.md: GB 18918-2002 Class 1A: COD 50, BOD5 10, NH3-N 5 (8 below 12 C), TN 15, TP 0.5 mg/L.
@pytest.mark.parametrize(
    ("item", "temperature_c", "expected"),
    [("COD", None, 50), ("BOD5", None, 10), ("NH3-N", 20.0, 5), ("NH3-N", 12.0, 8), ("NH3-N", 5.0, 8),
     ("TN", None, 15), ("TP", None, 0.5)],
)
def test_gb18918_class_1a(item, temperature_c, expected):
    lim = limit(item, "1A", "GB18918-2002", temperature_c=temperature_c)
    assert lim.value_g_m3 == expected and lim.kind == "max"


@pytest.mark.parametrize(
    ("item", "temperature_c", "expected"),
    [("COD", None, 60), ("BOD5", None, 20), ("SS", None, 20), ("animal-vegetable-oil", None, 3),
     ("petroleum", None, 3), ("anionic-surfactant", None, 1), ("TN", None, 20), ("NH3-N", 20.0, 8),
     ("NH3-N", 10.0, 15), ("TP", None, 1), ("faecal-coliform", None, 10000)],
)
def test_gb18918_class_1b(item, temperature_c, expected):
    # GB 18918-2002 Table 1, Class 1B column (text of the standard).
    assert limit(item, "1b", "GB18918-2002", temperature_c=temperature_c).value_g_m3 == expected


def test_gb18918_temperature_dependent_item_needs_temperature():
    with pytest.raises(StandardsError, match="temperature_c"):
        limit("NH3-N", "1A", "GB18918-2002")
    assert exceeds("ammonia", 6.0, "1A", "GB18918-2002", temperature_c=15.0)
    assert not exceeds("ammonia", 6.0, "1A", "GB18918-2002", temperature_c=10.0)


def test_gb18918_missing_class_limit():
    with pytest.raises(StandardsError, match="no limit for class '3'"):
        limit("TN", 3, "GB18918-2002")


def test_gb3838_table2_single_class():
    assert limit("sulfate", standard="GB3838-2002-T2").value_g_m3 == 250
    assert limit("nitrate", standard="GB3838-2002-T2").item == "nitrate-N"
    assert exceeds("iron", 0.31, standard="GB3838-2002-T2")
    assert limit("Mn", standard="GB3838-2002-T2").value_g_m3 == 0.1


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("NH3N", "NH3-N"), ("ammonia", "NH3-N"), ("Ammonia Nitrogen", "NH3-N"), ("oil", "petroleum"),
     ("do", "DO"), ("codmn", "CODMn"), ("CODcr", "COD"), ("Cr(VI)", "Cr6"), ("fecal coliform", "faecal-coliform"),
     ("vegetable oil", "animal-vegetable-oil"), ("total phosphorus", "TP")],
)
def test_canonical_item(alias, canonical):
    assert canonical_item(alias) == canonical


def test_unknown_item_lists_known_items():
    with pytest.raises(UnknownModelError, match="'chlorophyll'.*known items.*NH3-N"):
        canonical_item("chlorophyll")
    with pytest.raises(UnknownModelError, match="SS"):
        limit("SS", "III")  # a GB 18918 item, not in GB 3838 Table 1
    with pytest.raises(UnknownModelError, match="GB9999"):
        load_standard("GB9999")


def test_unknown_class():
    with pytest.raises(StandardsError, match="'VI'"):
        limit("DO", "VI")


def test_user_extended_csv(tmp_path):
    bundled = resources.files("hydrology") / "data" / "standards" / BUNDLED_STANDARDS["GB3838-2002"]
    path = tmp_path / "local.csv"
    with resources.as_file(bundled) as src:
        shutil.copyfile(src, path)
    with path.open("a", encoding="utf-8") as f:
        f.write("chl-a,叶绿素a,chlorophyll a,mg/L,0.001,0.002,0.01,0.03,0.06,max,chlorophyll|chla,"
                "local rule,Provincial rule (example)\n")
    std = Standard.from_csv(path, name="local")
    assert std.name == "local"
    assert limit("chlorophyll", "III", std).value_g_m3 == 0.01
    result = classify({"DO": 6.5, "chla": 0.02}, std)
    assert result.water_class == "IV" and result.deciding_items == ("chl-a",)
    # The bundled table is unchanged.
    assert "chl-a" not in load_standard("GB3838-2002").items


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item,unit,I,kind\nDO,mg/L,7.5,maximum\n", "kind 'maximum'"),
        ("item,unit,I,kind\nDO,mg/L,abc,min\n", "'abc' is not a number"),
        ("item,unit,I,kind\npH,-,9~6,range\n", "lo > hi"),
        ("item,unit,kind\nDO,mg/L,min\n", "no class columns"),
        ("item,I,kind\nDO,7.5,min\n", "missing column"),
        ("item,unit,I,kind,aliases\nDO,mg/L,7.5,min,ox\nCOD,mg/L,15,max,ox\n", "alias 'ox'"),
        ("item,unit,I,kind\nDO,mg/L,7.5,min\nDO,mg/L,6,min\n", "repeated rows need a condition"),
    ],
)
def test_malformed_csv(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StandardsError, match=message):
        Standard.from_csv(path)


def test_every_bundled_table_loads_with_sources():
    for name in BUNDLED_STANDARDS:
        std = load_standard(name)
        assert std.rows and all(r.source.startswith(("GB 3838-2002", "GB 18918-2002")) for r in std.rows)
