"""CAP 1.2 documents (OASIS Common Alerting Protocol, version 1.2, 2010) for rivertrace alerts.

:func:`build_cap` is a pure function: it turns :class:`CapFacts` (what an alert says, in plain
Python values) into one CAP 1.2 ``<alert>`` XML document. :func:`facts_from_forecast` gathers the
facts from the science's own objects (a network, a plume forecast, a disposal checklist), so the
CLI (``rivertrace cap``) and, later, the alert pipeline produce the same document.

The document
------------
- ``identifier`` is the rivertrace alert id; ``sender`` defaults to :data:`DEFAULT_SENDER`;
  ``sent`` is the alert's creation time with the UTC offset of the network's zone (``timezone`` of
  the network document, default Asia/Shanghai ``+08:00``; every CAP time is written so; CAP allows
  no ``Z`` and no fractions); ``status`` Actual, ``scope`` Public; ``incidents`` is the incident id.
- ``msgType`` is ``Alert`` for the first message of an incident, ``Update`` as it evolves and
  ``Cancel`` when it is closed; Update and Cancel carry ``references`` to the earlier messages
  (``sender,identifier,sent`` each, CAP 1.2 section 3.2.1).
- Two ``info`` blocks, ``zh-CN`` first, then ``en``, with the same codes: category ``Env`` (and
  ``Health`` when a drinking-water intake is affected), event, responseType, urgency, severity,
  certainty, effective/onset/expires, headline, description (arrival, peak and end at every
  receptor above its standard), instruction (the checklist's first actions with their deadlines),
  parameters (``timezone``: the IANA zone of the times) and the areas. Times in the texts carry
  date, time and zone (``2025-07-15 10:12 CST``; Chinese ``2025-07-15 10:12 北京时间``), and the
  description names the zone with its UTC offset.
- ``area``: one polygon around the affected river stretch (the reach lines from the release to the
  farthest receptor above its standard, buffered by :data:`STRETCH_BUFFER_M` on either side) and
  one circle of :data:`INTAKE_RADIUS_KM` around each affected drinking-water intake. Coordinates
  are WGS 84 ``lat,lon`` as CAP requires.

Urgency, severity, certainty
----------------------------
Mapped from the incident by :func:`cap_codes`, each the first row that applies:

==========  =======================================================================  ===========
field       condition                                                                CAP value
==========  =======================================================================  ===========
urgency     msgType Cancel (incident closed)                                         Past
urgency     time to act <= 15 min (incl. overdue), or a receptor already above its   Immediate
            standard at ``sent``
urgency     time to act <= 1 h                                                       Expected
urgency     time to act > 1 h                                                        Future
urgency     nothing to act on and no receptor above its standard                     Unknown
severity    msgType Cancel                                                           Minor
severity    detection level ``critical``                                             Extreme
severity    level ``high``, or a drinking-water intake forecast above its standard   Severe
severity    level ``moderate``, or a station forecast above its standard             Moderate
severity    otherwise                                                                Minor
certainty   msgType Cancel, or the anomaly is observed at a monitoring station       Observed
certainty   a forecast of a reported release (nothing measured yet)                  Likely
==========  =======================================================================  ===========

*Time to act* is the earliest checklist deadline after ``sent`` minus ``sent``, or, without a
checklist, the first forecast arrival above a standard minus ``sent``. CAP 1.2 defines Immediate as
"responsive action should be taken immediately" and Expected as "soon (within next hour)"; 15
minutes is this project's reading of "immediately" for a duty officer (the checklist's own
deadlines are 30 min or more). The detection levels are those of :mod:`tracer.detection`
(``low < moderate < high < critical``).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from hydrology.timezones import DEFAULT_ZONE, local_time, network_zone, zone, zone_note

__all__ = ["CAP_NS", "DEFAULT_SENDER", "INTAKE_RADIUS_KM", "STRETCH_BUFFER_M", "CapError", "CapFacts", "CapIntake",
           "CapReceptor", "CapReference", "build_cap", "cap_codes", "cap_time", "facts_from_do_event", "facts_from_forecast"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
#: sender when none is configured (CAP: no spaces, commas or '<' '&')
DEFAULT_SENDER = "rivertrace"
#: half-width of the polygon around the affected river stretch [m]: the river and the land along it
#: where a bank-side warning applies (intakes, boom sites, riverside paths)
STRETCH_BUFFER_M = 500.0
#: radius of the circle around an affected intake [km]: covers the first-level protection zone of a
#: river drinking-water source (HJ 338-2018: 1000 m upstream, 100 m downstream of the intake)
INTAKE_RADIUS_KM = 1.0
#: the default zone's offset (Asia/Shanghai, UTC+8 all year); kept for callers of ``server.cap.CHINA``.
#: A message is written in its network's zone (``CapFacts.timezone``).
CHINA = timezone(timedelta(hours=8))
#: "immediately" for urgency [s]
IMMEDIATE_S = 15 * 60.0
#: "within next hour" for urgency [s]
EXPECTED_S = 3600.0

MsgType = Literal["Alert", "Update", "Cancel"]
Level = Literal["low", "moderate", "high", "critical"]
_RESTRICTED = re.compile(r"[\s,<&]")


class CapError(ValueError):
    """Facts that cannot make a valid CAP 1.2 message (an identifier with a comma, a naive time...)."""


def cap_time(t: datetime, tz: ZoneInfo | None = None) -> str:
    """A CAP 1.2 dateTime in zone ``tz`` (default Asia/Shanghai): ``2025-07-15T09:35:00+08:00``,
    ``2025-05-01T08:00:00-04:00`` (no ``Z``, no fractions; section 3.3.2)."""
    if t.tzinfo is None:
        raise CapError(f"time {t.isoformat()} has no UTC offset")
    return t.astimezone(tz or zone(None)).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class CapReference:
    """An earlier message this one updates or cancels."""

    sender: str
    identifier: str
    sent: datetime

    def text(self, tz: ZoneInfo | None = None) -> str:
        """``sender,identifier,sent`` with ``sent`` in zone ``tz`` (the message's own zone, default Asia/Shanghai)."""
        return f"{self.sender},{self.identifier},{cap_time(self.sent, tz)}"

    @classmethod
    def parse(cls, text: str) -> CapReference:
        """From ``sender,identifier,sent`` (the CAP form)."""
        parts = text.split(",")
        if len(parts) != 3:
            raise CapError(f"reference {text!r}: expected sender,identifier,sent")
        try:
            sent = datetime.fromisoformat(parts[2])
        except ValueError as err:
            raise CapError(f"reference {text!r}: {parts[2]!r} is not an ISO 8601 time") from err
        if sent.tzinfo is None:
            raise CapError(f"reference {text!r}: the time needs a UTC offset")
        return cls(parts[0], parts[1], sent)


@dataclass(frozen=True, slots=True)
class CapReceptor:
    """A downstream station or intake in the forecast (times UTC-aware; None where never above)."""

    id: str
    kind: str
    name: str
    lat: float | None
    lon: float | None
    arrival: datetime | None
    peak_time: datetime | None
    end: datetime | None
    peak_mg_l: float
    threshold_mg_l: float | None
    population: int | None = None
    name_zh: str = ""  # the feature's ``name_zh`` when the network has one; the Chinese text uses the id otherwise
    minimum: bool = False  # the standard is a minimum (DO): "peak" is the lowest value, exceeding is falling below

    @property
    def exceeds(self) -> bool:
        return self.arrival is not None and self.threshold_mg_l is not None


# an intake is a receptor of kind "intake"
CapIntake = CapReceptor


@dataclass(frozen=True, slots=True)
class CapFacts:
    """What one alert says, in plain values (see :func:`facts_from_forecast`)."""

    alert_id: str
    incident_id: str
    sent: datetime
    network_name: str
    network_name_zh: str
    pollutant: str
    pollutant_zh: str
    receptors: tuple[CapReceptor, ...]
    stretch: tuple[tuple[tuple[float, float], ...], ...] = ()  # closed (lat, lon) rings
    level: Level | None = None
    observed: bool = False
    source: str | None = None
    first_deadline: datetime | None = None
    instructions: tuple[tuple[str, str], ...] = ()  # (zh, en), in checklist order
    sender_name: str = "rivertrace"
    extra: dict[str, str] = field(default_factory=dict)  # more CAP parameters (valueName -> value)
    #: IANA zone every time is written in (the network's ``timezone``)
    timezone: str = DEFAULT_ZONE

    @property
    def affected(self) -> tuple[CapReceptor, ...]:
        return tuple(r for r in self.receptors if r.exceeds)

    @property
    def intakes(self) -> tuple[CapReceptor, ...]:
        return tuple(r for r in self.affected if r.kind == "intake")


def cap_codes(facts: CapFacts, msg_type: MsgType = "Alert") -> tuple[str, str, str]:
    """(urgency, severity, certainty) by the table of the module docstring."""
    if msg_type == "Cancel":
        return "Past", "Minor", "Observed"
    affected = facts.affected
    arrivals = [r.arrival for r in affected if r.arrival is not None]
    act_at = facts.first_deadline or (min(arrivals) if arrivals else None)
    if act_at is None:
        urgency = "Unknown"
    else:
        to_act = (act_at - facts.sent).total_seconds()
        already = any(a <= facts.sent for a in arrivals)
        urgency = ("Immediate" if to_act <= IMMEDIATE_S or already else
                   "Expected" if to_act <= EXPECTED_S else "Future")
    rank = {"critical": 3, "high": 2, "moderate": 1, "low": 0}.get(facts.level or "", 0)
    if facts.intakes:
        rank = max(rank, 2)
    elif any(r.kind == "station" for r in affected):
        rank = max(rank, 1)
    severity = ("Minor", "Moderate", "Severe", "Extreme")[rank]
    certainty = "Observed" if facts.observed else "Likely"
    return urgency, severity, certainty


# ---------------------------------------------------------------------------------------- text
def _hm(t: datetime | None, tz: ZoneInfo, lang: str = "en") -> str:
    """Date, time and zone (``2025-07-15 10:12 CST``), or ``-``."""
    return "-" if t is None else local_time(t, tz, lang)


def _texts(facts: CapFacts, msg_type: MsgType) -> dict[str, dict[str, str]]:
    tz = zone(facts.timezone)
    hm_zh = (lambda t: _hm(t, tz, "zh"))
    hm = (lambda t: _hm(t, tz))
    net, net_zh, pol, pol_zh = facts.network_name, facts.network_name_zh, facts.pollutant, facts.pollutant_zh
    affected, intakes = facts.affected, facts.intakes
    first = min(affected, key=lambda r: r.arrival) if affected else None  # type: ignore[arg-type, return-value]
    if msg_type == "Cancel":
        head_zh, head_en = f"解除：{net_zh}{pol_zh}污染预警", f"Cancelled: {pol} pollution alert on {net}"
    elif first is not None and first.minimum:
        head_zh = (f"{net_zh}{pol_zh}不达标：{first.name_zh or first.id} 实测 {first.peak_mg_l:.3g} mg/L"
                   f"（标准 {first.threshold_mg_l:g} mg/L）")
        head_en = (f"Low {pol} on {net}: {first.name or first.id} {first.peak_mg_l:.3g} mg/L "
                   f"(standard {first.threshold_mg_l:g} mg/L)")
    elif intakes:
        i = min(intakes, key=lambda r: r.arrival)  # type: ignore[arg-type, return-value]
        head_zh = f"{net_zh}{pol_zh}污染：预计 {hm_zh(i.arrival)} 到达取水口 {i.name_zh or i.id}"
        head_en = f"{pol} pollution on {net}: reaches intake {i.name or i.id} at {hm(i.arrival)}"
    elif first is not None:
        head_zh = f"{net_zh}{pol_zh}污染：预计 {hm_zh(first.arrival)} 到达 {first.name_zh or first.id}"
        head_en = f"{pol} pollution on {net}: reaches {first.name or first.id} at {hm(first.arrival)}"
    else:
        head_zh, head_en = f"{net_zh}{pol_zh}污染：下游未预报超标", f"{pol} pollution on {net}: no exceedance forecast downstream"
    lines_zh, lines_en = [], []
    if facts.source:
        lines_zh.append(f"疑似排放源：{facts.source}。")
        lines_en.append(f"Suspected source: {facts.source}.")
    for r in affected:
        who, who_zh = f"{r.name or r.id} ({r.id})", (f"{r.name_zh}（{r.id}）" if r.name_zh else r.id)
        if r.minimum:
            lines_zh.append(f"{who_zh}：{pol_zh}实测 {r.peak_mg_l:.3g} mg/L，低于标准 {r.threshold_mg_l:g} mg/L"
                            f"（{hm_zh(r.arrival)} 起）。")
            lines_en.append(f"{who}: {pol} measured {r.peak_mg_l:.3g} mg/L, below the standard of "
                            f"{r.threshold_mg_l:g} mg/L (since {hm(r.arrival)}).")
            continue
        lines_zh.append(f"{who_zh}：{hm_zh(r.arrival)} 超标，{hm_zh(r.peak_time)} 达峰 {r.peak_mg_l:.3g} mg/L"
                        f"（标准 {r.threshold_mg_l:g} mg/L），{hm_zh(r.end)} 回落至标准以下。")
        lines_en.append(f"{who}: above standard from {hm(r.arrival)}, peak {r.peak_mg_l:.3g} mg/L "
                        f"(standard {r.threshold_mg_l:g} mg/L) at {hm(r.peak_time)}, below again at {hm(r.end)}.")
    if not affected:
        lines_zh.append("下游各断面和取水口均未预报超标。")
        lines_en.append("No downstream station or intake is forecast above its standard.")
    shown = [facts.sent, *(t for r in affected for t in (r.arrival, r.peak_time, r.end))]
    lines_zh.append(zone_note(tz, shown, "zh"))
    lines_en.append(zone_note(tz, shown))
    inst_zh = "\n".join(z for z, _ in facts.instructions) or ("预警解除，恢复常规监测。" if msg_type == "Cancel" else "")
    inst_en = "\n".join(e for _, e in facts.instructions) or ("Alert cancelled; routine monitoring." if msg_type == "Cancel" else "")
    return {"zh-CN": {"event": f"水污染事件（{pol_zh}）", "headline": head_zh, "description": "\n".join(lines_zh),
                      "instruction": inst_zh, "stretch": f"{net_zh}受影响河段", "intake": "取水口"},
            "en": {"event": f"Water pollution ({pol})", "headline": head_en, "description": "\n".join(lines_en),
                   "instruction": inst_en, "stretch": f"affected stretch of {net}", "intake": "drinking-water intake"}}


# ---------------------------------------------------------------------------------------- XML
def _check_token(name: str, value: str) -> None:
    if not value or _RESTRICTED.search(value):
        raise CapError(f"{name} {value!r}: CAP 1.2 forbids spaces, commas, '<' and '&' here")


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    if text is not None:
        el.text = text
    return el


def build_cap(facts: CapFacts, *, msg_type: MsgType = "Alert", references: Sequence[CapReference] = (),
              sender: str = DEFAULT_SENDER, status: str = "Actual") -> str:
    """One CAP 1.2 ``<alert>`` document (UTF-8 XML text) for ``facts``; pure, no I/O.

    Raises :class:`CapError` for facts CAP cannot carry: a restricted character in the identifier,
    sender or a reference, an Update or Cancel without references, a time without UTC offset.
    """
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise CapError(f"msgType {msg_type!r}: expected Alert, Update or Cancel")
    _check_token("identifier", facts.alert_id)
    _check_token("sender", sender)
    for ref in references:
        _check_token("reference sender", ref.sender)
        _check_token("reference identifier", ref.identifier)
    if msg_type != "Alert" and not references:
        raise CapError(f"a {msg_type} message must reference the earlier message(s) it updates or cancels")
    urgency, severity, certainty = cap_codes(facts, msg_type)
    texts = _texts(facts, msg_type)
    tz = zone(facts.timezone)
    ET.register_namespace("", CAP_NS)
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", facts.alert_id)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(facts.sent, tz))
    _sub(root, "status", status)
    _sub(root, "msgType", msg_type)
    _sub(root, "source", "rivertrace")
    _sub(root, "scope", "Public")
    if references:
        _sub(root, "references", " ".join(r.text(tz) for r in references))
    incident = facts.incident_id.replace(" ", "_")
    if incident:
        _sub(root, "incidents", incident)
    arrivals = [r.arrival for r in facts.affected if r.arrival is not None]
    ends = [r.end for r in facts.affected if r.end is not None]
    expires = max(ends) if ends and msg_type != "Cancel" else facts.sent + timedelta(hours=24)
    response = ("AllClear",) if msg_type == "Cancel" else (("Avoid", "Monitor") if facts.intakes else ("Monitor",))
    for lang, tx in texts.items():
        info = _sub(root, "info")
        _sub(info, "language", lang)
        _sub(info, "category", "Env")
        if facts.intakes and msg_type != "Cancel":
            _sub(info, "category", "Health")
        _sub(info, "event", tx["event"])
        for rt in response:
            _sub(info, "responseType", rt)
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        _sub(info, "effective", cap_time(facts.sent, tz))
        if arrivals and msg_type != "Cancel":
            _sub(info, "onset", cap_time(min(arrivals), tz))
        _sub(info, "expires", cap_time(max(expires, facts.sent), tz))
        _sub(info, "senderName", facts.sender_name)
        _sub(info, "headline", tx["headline"])
        _sub(info, "description", tx["description"])
        if tx["instruction"]:
            _sub(info, "instruction", tx["instruction"])
        params = {"incident_id": facts.incident_id, "pollutant": facts.pollutant, "timezone": tz.key, **facts.extra}
        for name, value in params.items():
            p = _sub(info, "parameter")
            _sub(p, "valueName", name)
            _sub(p, "value", value)
        if facts.stretch:
            area = _sub(info, "area")
            _sub(area, "areaDesc", tx["stretch"])
            for ring in facts.stretch:
                _sub(area, "polygon", " ".join(f"{lat:.5f},{lon:.5f}" for lat, lon in ring))
        for r in facts.intakes if msg_type != "Cancel" else ():
            if r.lat is None or r.lon is None:
                continue
            area = _sub(info, "area")
            label = (r.name_zh or r.id) if lang == "zh-CN" else f"{r.name or r.id} ({r.id})"
            _sub(area, "areaDesc", f"{tx['intake']} {label}")
            _sub(area, "circle", f"{r.lat:.5f},{r.lon:.5f} {INTAKE_RADIUS_KM:g}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------------------------------- facts
def _reference(root: ET.Element) -> CapReference:
    q = f"{{{CAP_NS}}}"
    return CapReference(root.findtext(q + "sender") or DEFAULT_SENDER, root.findtext(q + "identifier") or "",
                        datetime.fromisoformat(root.findtext(q + "sent") or ""))


def reference_of(xml: str) -> CapReference:
    """The reference (sender, identifier, sent) of a CAP document, for a later Update or Cancel."""
    try:
        return _reference(ET.fromstring(xml))
    except (ET.ParseError, ValueError) as err:
        raise CapError(f"the earlier CAP document does not parse: {err}") from err


def _document_zone(root: ET.Element, q: str) -> ZoneInfo:
    """The zone an earlier document was written in: its ``timezone`` parameter (default Asia/Shanghai,
    the zone of documents written before the parameter existed)."""
    for p in root.iter(q + "parameter"):
        if p.findtext(q + "valueName") == "timezone":
            try:
                return zone(p.findtext(q + "value"))
            except ValueError as err:
                raise CapError(f"the earlier CAP document's {err}") from err
    return zone(None)


def follow_up_cap(previous_xml: str, *, alert_id: str, sent: datetime, msg_type: MsgType,
                  headline: tuple[str, str] | None = None) -> str:
    """An ``Update`` or ``Cancel`` of an earlier CAP document of the same incident; pure, no I/O.

    The new message keeps the earlier one's info blocks (what is still known of the plume), with
    its own ``identifier``, ``sent`` and ``effective``, ``references`` to the earlier message (the
    latest one: a CAP chain refers back one step), and, when given, ``headline`` (zh-CN, en)
    prefixed to the earlier headlines. A ``Cancel`` is the all-clear: responseType ``AllClear``, no
    onset, no Health category and no intake circles, urgency Past, severity Minor, certainty
    Observed (as :func:`build_cap` writes a Cancel).
    """
    if msg_type not in ("Update", "Cancel"):
        raise CapError(f"msgType {msg_type!r}: a follow-up is an Update or a Cancel")
    _check_token("identifier", alert_id)
    ET.register_namespace("", CAP_NS)
    try:
        root = ET.fromstring(previous_xml)
    except ET.ParseError as err:
        raise CapError(f"the earlier CAP document does not parse: {err}") from err
    q = f"{{{CAP_NS}}}"
    tz = _document_zone(root, q)
    prev = _reference(root)
    root.find(q + "identifier").text = alert_id  # type: ignore[union-attr]
    root.find(q + "sent").text = cap_time(sent, tz)  # type: ignore[union-attr]
    root.find(q + "msgType").text = msg_type  # type: ignore[union-attr]
    refs = root.find(q + "references")
    if refs is None:  # references come right after scope (CAP 1.2's element order)
        children = list(root)
        at = children.index(root.find(q + "scope")) + 1  # type: ignore[arg-type]
        refs = ET.Element(q + "references")
        root.insert(at, refs)
    refs.text = prev.text(tz)
    for info in root.findall(q + "info"):
        info.find(q + "effective").text = cap_time(sent, tz)  # type: ignore[union-attr]
        lang = info.findtext(q + "language")
        if headline is not None:
            head = info.find(q + "headline")
            extra = headline[0] if lang == "zh-CN" else headline[1]
            if head is not None:
                head.text = f"{extra}；{head.text}" if lang == "zh-CN" else f"{extra}; {head.text}"
        if msg_type == "Cancel":  # the all-clear codes of cap_codes for a Cancel
            for tag, code in (("urgency", "Past"), ("severity", "Minor"), ("certainty", "Observed")):
                info.find(q + tag).text = code  # type: ignore[union-attr]
            kinds = info.findall(q + "responseType")
            for extra_rt in kinds[1:]:
                info.remove(extra_rt)
            if kinds:
                kinds[0].text = "AllClear"
            for cat in info.findall(q + "category"):
                if cat.text == "Health":
                    info.remove(cat)
            onset = info.find(q + "onset")
            if onset is not None:
                info.remove(onset)
            for area in info.findall(q + "area"):
                if area.find(q + "circle") is not None and area.find(q + "polygon") is None:
                    info.remove(area)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _path_pieces(net: Any, source: tuple[str, float], targets: Sequence[tuple[str, float]]) -> list[tuple[str, float, float]]:
    """(reach, from chainage, to chainage) pieces of the river from ``source`` down to every target."""
    src_reach, src_c = source
    down = net.all_downstream(src_reach) | {src_reach}
    pieces: dict[str, tuple[float, float]] = {}
    for reach, chainage in targets:
        for rid in (net.all_upstream(reach) | {reach}) & down:
            length = net.reach(rid).length_m
            lo = src_c if rid == src_reach else 0.0
            hi = chainage if rid == reach else length
            if hi < lo:
                continue
            old = pieces.get(rid)
            pieces[rid] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)
    return [(rid, lo, hi) for rid, (lo, hi) in pieces.items()]


def _stretch_rings(net: Any, pieces: Sequence[tuple[str, float, float]]) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Closed (lat, lon) rings around river pieces (reach, from, to chainage [m]), buffered by
    :data:`STRETCH_BUFFER_M` in a local azimuthal equidistant projection; () without CRS or geometry."""
    import shapely
    from pyproj import CRS, Transformer

    from hydrology.gis_output import _crs, point_on_line, reach_line

    crs = _crs(net)
    if crs is None or not pieces:
        return ()
    lines = []
    for rid, lo_m, hi_m in pieces:
        line = reach_line(net, rid)
        if line is None:
            continue
        length = net.reach(rid).length_m
        lo, hi = lo_m / length, hi_m / length
        inner = [p for p, f in zip(line, _fractions(line), strict=True) if lo < f < hi]
        lines.append([point_on_line(line, lo)[0], *inner, point_on_line(line, hi)[0]])
    if not lines:
        return ()
    to_wgs = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
    lonlat = [[to_wgs.transform(x, y) for x, y in pts] for pts in lines]
    lon0, lat0 = lonlat[0][0]
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m")
    fwd = Transformer.from_crs(CRS.from_epsg(4326), local, always_xy=True)
    back = Transformer.from_crs(local, CRS.from_epsg(4326), always_xy=True)
    geom = shapely.MultiLineString([[fwd.transform(x, y) for x, y in pts] for pts in lonlat])
    shape = geom.buffer(STRETCH_BUFFER_M).simplify(25.0)  # 25 m: well inside the 500 m buffer
    polys = list(shape.geoms) if hasattr(shape, "geoms") else [shape]
    rings = []
    for poly in polys:
        ring = [back.transform(x, y) for x, y in poly.exterior.coords]
        rings.append(tuple((lat, lon) for lon, lat in ring))
    return tuple(rings)


def _fractions(line: Any) -> list[float]:
    import numpy as np

    seg = np.hypot(*np.diff(np.asarray(line, float), axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    return list(cum / cum[-1]) if cum[-1] > 0 else [0.0] * len(cum)


def _pollutant_zh(name: str) -> str:
    from hydrology.standards import pollutant_name_zh

    return pollutant_name_zh(name)


def facts_from_forecast(net: Any, fc: Any, checklist: Any = None, *, alert_id: str, incident_id: str, sent: datetime,
                        level: Level | None = None, observed: bool = False, source: str | None = None,
                        max_instructions: int = 8) -> CapFacts:
    """:class:`CapFacts` from a network, a forecast with a release start, and optionally a checklist.

    Parameters
    ----------
    net : hydrology.network.RiverNetwork
        The network (names, coordinates and CRS of the receptors and reaches).
    fc : hydrology.transport.analytic.Forecast
        The plume forecast; its release must have a ``start`` (times become clock times).
    checklist : tracer.checklist.Checklist, optional
        The disposal checklist; its first ``max_instructions`` actions become the instruction and
        its earliest deadline after ``sent`` the time to act.
    alert_id, incident_id : str
        The alert's id (CAP identifier) and its incident's id.
    sent : datetime
        When the alert is issued (with UTC offset).
    level : {"low", "moderate", "high", "critical"}, optional
        Detection severity level of the incident (none for a reported release).
    observed : bool
        The anomaly was measured at a station (certainty Observed) rather than only forecast.
    source : str, optional
        The suspected source (discharger id), named in the description.
    """
    from hydrology.gis_output import feature_point
    from hydrology.io.netcdf import lonlat

    rel = fc.release
    if rel.start is None:
        raise CapError("the forecast's release has no start: CAP needs clock times")
    if sent.tzinfo is None:
        raise CapError(f"sent {sent.isoformat()} has no UTC offset")
    at = (lambda s: None if s is None else rel.start + timedelta(seconds=float(s)))
    receptors = []
    for r in fc.receptors:
        if r.kind not in ("station", "intake"):
            continue
        feat = net.feature(r.id, r.kind)
        ll = lonlat(net, [(r.reach, r.chainage_m)]) if feature_point(net, r.reach, r.chainage_m) is not None else None
        lon, lat = (float(ll[0][0]), float(ll[1][0])) if ll is not None else (None, None)
        pop = feat.get("population")
        receptors.append(CapReceptor(
            id=r.id, kind=r.kind, name=feat.name or "", lat=lat, lon=lon, arrival=at(r.arrival_s),
            peak_time=at(r.peak_s), end=at(r.end_s), peak_mg_l=float(r.peak_g_m3),  # mg/L = g/m3
            threshold_mg_l=r.threshold_g_m3, population=None if pop is None else int(pop),
            name_zh=str(feat.get("name_zh") or "")))
    affected = [(c.id, r.reach, r.chainage_m) for c, r in zip(receptors, [r for r in fc.receptors if r.kind in
                                                                            ("station", "intake")], strict=True)
                if c.exceeds]
    targets = [(reach, chainage) for _id, reach, chainage in affected]
    if not targets and fc.receptors:  # nothing above a standard: the stretch down to the nearest receptor
        targets = [(fc.receptors[0].reach, fc.receptors[0].chainage_m)]
    tz = network_zone(net)
    instructions, first_deadline = _instructions(checklist, max_instructions, tz)
    if not math.isfinite(rel.total_mass_kg):
        raise CapError("the release has no finite mass")
    return CapFacts(
        alert_id=alert_id, incident_id=incident_id, sent=sent, network_name=net.name or "",
        network_name_zh=str(getattr(net, "name_zh", "") or ""),
        pollutant=rel.pollutant.name, pollutant_zh=_pollutant_zh(rel.pollutant.name), receptors=tuple(receptors),
        stretch=_stretch_rings(net, _path_pieces(net, (rel.reach, rel.chainage_m), targets)), level=level,
        observed=observed, source=source, first_deadline=first_deadline, instructions=instructions,
        extra={"release_mass_kg": f"{rel.total_mass_kg:g}", "release_start": cap_time(rel.start, tz)}, timezone=tz.key)


def _instructions(checklist: Any, limit: int, tz: ZoneInfo) -> tuple[tuple[tuple[str, str], ...], datetime | None]:
    """(zh, en) lines of the checklist's first ``limit`` actions, and its earliest pending deadline."""
    if checklist is None:
        return (), None
    from tracer.checklist import KIND_NAMES

    lines = []
    for a in checklist.actions[:limit]:
        due = "" if a.deadline is None else f"（{_hm(a.deadline, tz, 'zh')} 前）"
        due_en = "" if a.deadline is None else f" (by {_hm(a.deadline, tz)})"
        lines.append((f"{KIND_NAMES[a.kind][0]}：{a.target}{due}", f"{KIND_NAMES[a.kind][1]}: {a.target}{due_en}"))
    deadlines = [a.deadline for a in checklist.actions if a.deadline is not None and a.status == "pending"]
    return tuple(lines), (min(deadlines) if deadlines else None)


def facts_from_do_event(net: Any, event: Any, checklist: Any = None, *, alert_id: str, incident_id: str,
                        sent: datetime, since: datetime | None = None, level: Level | None = None,
                        max_instructions: int = 8) -> CapFacts:
    """:class:`CapFacts` for a dissolved-oxygen sag (:class:`tracer.planner.DOEvent`): observed at a station.

    The station is the one affected receptor (its GB 3838-2002 DO minimum for its target class,
    the observed DO, low since ``since``, default ``sent``); the area is the river from the
    suspected source to the station. Certainty is Observed.
    """
    from hydrology.io.netcdf import lonlat
    from hydrology.standards import load_standard

    if sent.tzinfo is None:
        raise CapError(f"sent {sent.isoformat()} has no UTC offset")
    st = net.feature(event.station, "station")
    limit = load_standard().limit("DO", st.get("target_class") or "III")
    ll = lonlat(net, [(st.reach, st.chainage_m)])
    lon, lat = (float(ll[0][0]), float(ll[1][0])) if ll is not None else (None, None)
    rec = CapReceptor(id=st.id, kind="station", name=st.name or "", lat=lat, lon=lon, arrival=since or sent,
                      peak_time=since or sent, end=None, peak_mg_l=float(event.observed_do_g_m3),
                      threshold_mg_l=float(limit.value_g_m3),  # type: ignore[arg-type]
                      name_zh=str(st.get("name_zh") or ""), minimum=True)
    src = net.feature(event.source)
    tz = network_zone(net)
    instructions, first_deadline = _instructions(checklist, max_instructions, tz)
    return CapFacts(
        alert_id=alert_id, incident_id=incident_id, sent=sent, network_name=net.name or "",
        network_name_zh=str(getattr(net, "name_zh", "") or ""), pollutant="DO", pollutant_zh=_pollutant_zh("DO"),
        receptors=(rec,), stretch=_stretch_rings(net, _path_pieces(net, (src.reach, src.chainage_m),
                                                                     [(st.reach, st.chainage_m)])),
        level=level, observed=True, source=event.source, first_deadline=first_deadline, instructions=instructions,
        extra={"observed_do_mg_l": f"{event.observed_do_g_m3:.3g}", "do_standard_mg_l": f"{limit.value_g_m3:g}"},
        timezone=tz.key)
