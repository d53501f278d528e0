"""Clock times on the figures are in the network's zone, with the zone named.

Reference: US Eastern fell back from EDT (UTC-4) to EST (UTC-5) at 2025-11-02 06:00 UTC (02:00 EDT
became 01:00 EST; first Sunday of November, Energy Policy Act of 2005), written out here by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from matplotlib.figure import Figure

from hydrology.plotting import PlottingError, _clock_axis, _local, plot_breakthrough
from hydrology.timezones import zone


def _top_labels(start: datetime, tz_name: str, hours: float) -> tuple[list[str], str]:
    ax = Figure().subplots()  # no pyplot: nothing global to close
    ax.set_xlim(0.0, hours)
    ax.set_xticks([float(h) for h in range(int(hours) + 1)])
    _clock_axis(ax, start, zone(tz_name))
    (sec,) = ax.child_axes
    return [t.get_text() for t in sec.get_xticklabels()], sec.get_xlabel()


def test_clock_axis_follows_the_daylight_saving_change():
    start = datetime(2025, 11, 2, 4, 0, tzinfo=UTC)  # 00:00 EDT
    labels, title = _top_labels(start, "America/New_York", 4)
    # 04:00Z 00:00 EDT, 05:00Z 01:00 EDT, 06:00Z 01:00 EST (the hour repeats), 07:00Z 02:00 EST, 08:00Z 03:00 EST
    assert labels == ["00:00", "01:00", "01:00", "02:00", "03:00"]
    assert title == "local time (America/New_York, UTC-04:00/UTC-05:00)"


def test_clock_axis_and_release_label_of_the_demo_zone():
    start = datetime(2025, 7, 15, 1, 0, tzinfo=UTC)  # the Ruxi release, 09:00 China Standard Time
    labels, title = _top_labels(start, "Asia/Shanghai", 2)
    assert labels == ["09:00", "10:00", "11:00"] and title == "local time (Asia/Shanghai, UTC+08:00)"
    assert _local(start, zone("Asia/Shanghai")) == "2025-07-15 09:00 CST (UTC+08:00, Asia/Shanghai)"
    assert _local(datetime(2025, 5, 1, 12, tzinfo=UTC), zone("America/New_York")) == (
        "2025-05-01 08:00 EDT (UTC-04:00, America/New_York)")


def test_unknown_zone_is_refused(tmp_path):
    with pytest.raises(PlottingError, match="timezone"):
        plot_breakthrough(None, tmp_path / "x.png", timezone="Mars/Olympus")  # type: ignore[arg-type]
