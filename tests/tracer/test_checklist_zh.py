"""The Chinese checklist has no English fragments (issue 14: "food_processing", "given release").

What may stay in Latin letters: element ids (RX-FOOD-1), units (mg/L, m³/s, km, h), the name of a
model (Streeter-Phelps), and time zones as the world writes them: UTC offsets (UTC+08:00) and IANA zone
names (Asia/Shanghai). Everything else a duty officer reads is Chinese.
"""

from __future__ import annotations

import re

import pytest

from server.cli import main
from tracer.planner import evidence_zh

ALLOWED = {"mg", "km", "Streeter", "Phelps", "UTC"}


def _latin_words(text: str) -> set[str]:
    """Words of two or more Latin letters that are not ids, units or model names (single letters are
    units and formula symbols: h, m³/s, Q(C峰/C标−1))."""
    text = re.sub(r"[\w-]+/[\w-]+/\S+", " ", text)  # incident id (station or discharger/parameter/time)
    text = re.sub(r"\b[A-Z]{2}-[A-Z0-9-]+\b", " ", text)  # element ids
    text = re.sub(r"\b[A-Z][a-z]+/[A-Za-z_]+\b", " ", text)  # IANA zone name (Asia/Shanghai)
    return {w for w in re.findall(r"[A-Za-z_]{2,}", text)} - ALLOWED


@pytest.fixture(scope="module")
def readings(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    for name in ("ruxi", "puhe"):
        assert main(["replay", name, "-o", str(d / f"{name}.csv")]) == 0
    return d


@pytest.mark.parametrize("case", ["ruxi-readings", "puhe-readings", "ruxi-known-release"])
def test_chinese_checklist_has_no_english_fragments(case, readings, capsys):
    argv = {
        "ruxi-readings": ["plan", "demo:ruxi", str(readings / "ruxi.csv"), "--station", "RX-OILSPOT",
                          "--parameter", "petroleum"],
        "puhe-readings": ["plan", "demo:puhe", str(readings / "puhe.csv"), "--station", "PH-ZHAIXI", "--parameter", "DO"],
        "ruxi-known-release": ["plan", "demo:ruxi", "--discharger", "RX-FOOD-1", "--mass-kg", "80", "--pollutant",
                               "petroleum", "--start", "2025-07-15T09:00+08:00", "--now", "2025-07-15T09:35+08:00"],
    }[case]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "处置清单" in out and len(out) > 500  # the Chinese form was printed (default --lang zh)
    assert _latin_words(out) == set(), out


def test_evidence_forms_are_translated():
    assert evidence_zh("food_processing, 2.3 km upstream") == "食品加工企业，位于上游 2.3 km"
    assert evidence_zh("given release") == "已知排放（人工给定）"
    assert "sewage_plant" not in evidence_zh("sewage_plant nearby")
