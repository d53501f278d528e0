"""``rivertrace detect``, ``trace``, ``replay``, ``plan`` and ``cap``: the incident commands."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydrology.timezones import network_zone, zone

from .common import CliError, add_release_arguments, build_release, load_valid_network, parse_time, positive


def _load_readings(net: Any, path: str):
    from tracer.readings import load_readings_csv

    if not Path(path).exists():
        raise CliError(f"{path}: no such file")
    res = load_readings_csv(path, known_stations=set(net.stations))
    if res.rejected:
        print(f"{len(res.rejected)} reading row problem(s) rejected, the rest kept:", file=sys.stderr)
        for r in res.rejected[:20]:
            print(f"  {r}", file=sys.stderr)
        if len(res.rejected) > 20:
            print(f"  ... and {len(res.rejected) - 20} more", file=sys.stderr)
    if len(res.readings) == 0:
        raise CliError(f"{path}: no usable readings", 1)
    return res


def _ts(t: Any, tz: Any = None) -> str | None:
    """ISO 8601 with the UTC offset of the network's zone ``tz`` (default Asia/Shanghai), to the second."""
    from hydrology.timezones import iso_local, zone

    return None if t is None else iso_local(t, tz or zone(None))


def _human(iso: str | None, tz: Any) -> str:
    """An ISO 8601 time of the JSON form as a person reads it: ``2025-07-15 09:35 CST``."""
    from hydrology.timezones import local_time

    return "-" if iso is None else local_time(datetime.fromisoformat(iso), tz)


def cmd_detect(args: argparse.Namespace) -> int:
    from tracer.detection import DetectionRules, detect
    from tracer.trace import station_contexts

    net = load_valid_network(args.network)
    res = _load_readings(net, args.readings)
    tz = network_zone(net)
    det = detect(res.readings, station_contexts(net), DetectionRules(day_timezone=tz.key))  # the basin's local days
    ts = (lambda t: _ts(t, tz))
    doc: dict[str, Any] = {
        "timezone": tz.key,
        "rejected": [{"row": r.row_number, "field": r.field, "value": r.value, "reason": r.reason} for r in res.rejected],
        "faults": [{"station": f.station_id, "parameter": f.parameter, "kind": f.kind, "start": ts(f.start),
                    "end": ts(f.end), "message": f.message} for f in det.faults],
        "anomalies": [{"station": a.station_id, "parameter": a.parameter, "rule": a.rule, "start": ts(a.start),
                       "end": ts(a.end), "detected_at": ts(a.detected_at), "severity": a.severity,
                       "level": a.level, "value": a.value, "threshold": a.threshold, "message": a.message}
                      for a in det.anomalies],
        "incidents": [{"id": i.id, "stations": list(i.station_ids), "parameters": list(i.parameters),
                       "start": ts(i.start), "end": ts(i.end), "detected_at": ts(i.detected_at),
                       "severity": i.severity, "level": i.level, "anomalies": len(i.anomalies)} for i in det.incidents],
    }
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=1, default=str))
    else:
        print(f"{len(det.incidents)} incident(s), {len(det.anomalies)} anomalies, {len(det.faults)} sensor fault(s)")
        for i in doc["incidents"]:
            print(f"  {i['id']}: {', '.join(i['stations'])} {', '.join(i['parameters'])} from {_human(i['start'], tz)} ({i['level']})")
        for f in doc["faults"]:
            print(f"  fault {f['station']} {f['parameter']} {f['kind']}: {f['message']}")
    return 0


def _operations(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    from tracer.priors import OperationsEvidence

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return {k: OperationsEvidence(**v) for k, v in raw.items()}
    except (OSError, ValueError, TypeError) as err:
        raise CliError(f"--operations {path}: {getattr(err, 'strerror', None) or err} (expected a JSON object: "
                       "discharger id -> {production_on_treatment_off: bool, effluent_exceedance: bool, "
                       "violations: int})") from err


def separation_json(undecided: tuple[str, ...], grab: Any, checks: tuple[Any, ...], tz: Any = None) -> dict[str, Any]:
    """The ``separation`` member of ``trace --json``: the undecided group, its grab sample, operations checks
    (times in the network's zone ``tz``)."""
    g = None if grab is None else {
        "reach": grab.reach, "chainage_m": round(grab.chainage_m, 1), "site": grab.site, "site_name": grab.site_name,
        "time": _ts(grab.time, tz), "gain_nats": grab.gain_nats, "predicted_mg_l": grab.predicted_mg_l,
        "weights": grab.weights, "sigma_mg_l": grab.sigma_mg_l}
    return {"undecided": list(undecided), "grab_sample": g,
            "operations_checks": [{"discharger": c.discharger, "zh": c.zh, "en": c.en} for c in checks]}


def trace_json(res: Any, tz: Any = None) -> dict[str, Any]:
    """The JSON object of ``rivertrace trace --json``: candidates in rank order, and their groups
    (ids of candidates within a Bayes factor of 10 of each group's best); times ISO 8601 with the
    UTC offset of the network's zone ``tz`` (default Asia/Shanghai)."""
    def iv(pair: Any) -> list[Any] | None:
        if pair is None:
            return None
        return [_ts(v, tz) if isinstance(v, datetime) else v for v in pair]

    return {
        "station": res.station, "timezone": (tz or zone(None)).key, "parameter": res.parameter, "model": res.model,
        "stations_saw": list(res.stations_saw), "stations_silent": list(res.stations_silent),
        "nearest_upstream_discharger": res.nearest_upstream_discharger, "notes": list(res.notes),
        "groups": [[c.id for c in g] for g in res.groups],
        "candidates": [{
            "id": c.id, "kind": c.kind, "probability": c.probability, "distance_m": round(c.distance_m, 1),
            "travel_time_s": round(c.travel_time_s, 1), "release_start": _ts(c.release_start, tz),
            "release_start_interval": iv(c.release_start_interval), "mass_kg": c.mass_kg,
            "mass_kg_interval": iv(c.mass_kg_interval), "rate_kg_s": c.rate_kg_s,
            "rate_kg_s_interval": iv(c.rate_kg_s_interval), "evidence": c.evidence, "explanation": c.explanation,
        } for c in res.candidates],
    }


def cmd_trace(args: argparse.Namespace) -> int:
    from hydrology.oxygen_network import DOConditions
    from tracer.trace import detection_time, separation, trace

    net = load_valid_network(args.network)
    res = _load_readings(net, args.readings)
    out = trace(net, res.readings, args.station, args.parameter, operations=_operations(args.operations),
                horizon_s=args.horizon_h * 3600.0, do_conditions=DOConditions(temperature_c=args.temperature_c),
                release=None if args.release == "auto" else args.release)
    tz = network_zone(net)
    doc = trace_json(out, tz)
    if out.model == "steady_do":
        now = res.readings.series(out.station, "DO").index.max().to_pydatetime()
    else:
        now = parse_time(args.now, "--now") if args.now else detection_time(res.readings, out.station, out.parameter).to_pydatetime()
    sep = separation(net, res.readings, out, now)
    doc["separation"] = separation_json(*sep, tz=tz)
    if args.json:
        print(json.dumps(doc, ensure_ascii=False, indent=1))
    else:
        print(f"{out.station} {out.parameter} ({out.model} model); saw: {', '.join(out.stations_saw) or '-'}; "
              f"silent: {', '.join(out.stations_silent) or '-'}")
        for rank, c in enumerate(doc["candidates"][:args.top], 1):
            size = f"{c['mass_kg']:.3g} kg" if c["mass_kg"] is not None else (
                f"{c['rate_kg_s']:.3g} kg/s" if c["rate_kg_s"] is not None else "-")
            print(f"{rank:>2}. {c['id']:<18} {c['kind']:<16} p={c['probability']:.3f}  {c['distance_m'] / 1000:6.2f} km "
                  f"{c['travel_time_s'] / 3600:6.2f} h  start {_human(c['release_start'], tz)}  {size}")
        print(f"nearest upstream discharger (baseline): {out.nearest_upstream_discharger}")
        groups = [g for g in doc["groups"] if len(g) > 1]
        print("cannot be told apart (Bayes factor < 10): " + ("; ".join(", ".join(g) for g in groups) or "-"))
        g = doc["separation"]["grab_sample"]
        if g is not None:
            where = g["site_name"] or g["site"] or "a point on the reach"
            pred = ", ".join(f"{k} {v:.3g}" for k, v in g["predicted_mg_l"].items())
            print(f"grab sample: {where}, reach {g['reach']} at {g['chainage_m']:.0f} m, {_human(g['time'], tz)}; "
                  f"gain {g['gain_nats']:.2f} nats; predicted mg/L: {pred}")
        for c in doc["separation"]["operations_checks"]:
            print(f"operations check {c['discharger']}: {c['en']}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from tracer.scenarios import puhe_replay, ruxi_replay

    rp = {"ruxi": ruxi_replay, "puhe": puhe_replay}[args.incident](seed=args.seed)
    f = rp.readings.frame.copy()
    f["time"] = f["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    f["unit"] = ["degC" if p == "temperature" else "mg/L" for p in f["parameter"]]
    f[["station_id", "parameter", "time", "value", "unit", "flag"]].to_csv(args.output, index=False)
    print(f"wrote {len(f)} readings to {args.output}: {rp.description}; anomaly at {rp.station} ({rp.parameter})",
          file=sys.stderr)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from hydrology.oxygen_network import DOConditions
    from tracer.planner import PlanInput, Suspect, plan
    from tracer.policy import load_policy
    from tracer.trace import plan_input_from_trace, trace

    net = load_valid_network(args.network)
    policy = load_policy(args.policy)
    now = parse_time(args.now, "--now") if args.now else None
    if args.readings:
        if not (args.station and args.parameter):
            raise CliError("with READINGS.csv give --station and --parameter (trace first, then plan)")
        res = _load_readings(net, args.readings)
        cond = DOConditions(temperature_c=args.temperature_c)
        traced = trace(net, res.readings, args.station, args.parameter, do_conditions=cond)
        inp = plan_input_from_trace(net, res.readings, traced, now=now, do_conditions=cond, separate=True)
    else:
        if not (args.discharger and args.mass_kg and args.pollutant):
            raise CliError("give --discharger, --mass-kg and --pollutant (a known release), or READINGS.csv with "
                           "--station and --parameter")
        args.reach = args.chainage_m = None
        if args.start is None:
            raise CliError("give --start (when the release began, ISO 8601 with offset)")
        release = build_release(net, args)
        inp = PlanInput(f"{args.discharger}/{release.pollutant.name}/{args.start}", now or release.start,
                        (Suspect(args.discharger, 1.0, "given release", "已知排放（人工给定）"),), release)
    checklist = plan(net, inp, policy)
    if args.json:
        print(json.dumps(checklist.as_dict(), ensure_ascii=False, indent=1))
    else:
        print(checklist.markdown(args.lang))
    return 0




def cmd_cap(args: argparse.Namespace) -> int:
    from hydrology.oxygen_network import DOConditions
    from hydrology.transport.analytic import forecast
    from server.cap import CapError, CapReference, build_cap, facts_from_do_event, facts_from_forecast
    from tracer.planner import PlanInput, Suspect, plan
    from tracer.policy import load_policy
    from tracer.trace import plan_input_from_trace, trace

    net = load_valid_network(args.network)
    try:
        refs = [CapReference.parse(text) for text in args.reference]
    except CapError as err:
        raise CliError(f"--reference: {err}") from err
    now = parse_time(args.now, "--now") if args.now else None
    if args.readings:  # an anomaly in readings: trace, then plan, as `plan` does
        if not (args.station and args.parameter):
            raise CliError("with READINGS.csv give --station and --parameter")
        res = _load_readings(net, args.readings)
        cond = DOConditions(temperature_c=args.temperature_c)
        traced = trace(net, res.readings, args.station, args.parameter, do_conditions=cond)
        inp = plan_input_from_trace(net, res.readings, traced, now=now, do_conditions=cond)
        observed, source = True, (inp.suspects[0].id if inp.suspects else None)
    else:
        if not (args.discharger or args.reach) or args.mass_kg is None or not args.pollutant:
            raise CliError("give a known release (--discharger or --reach/--chainage-m, --mass-kg, --pollutant, "
                           "--start), or READINGS.csv with --station and --parameter")
        if args.start is None:
            raise CliError("give --start (when the release began, ISO 8601 with offset): CAP carries clock times")
        release = build_release(net, args)
        src = args.discharger or f"reach:{release.reach}"
        suspects = (Suspect(args.discharger, 1.0, "given release", "已知排放（人工给定）"),) if args.discharger else ()
        inp = PlanInput(f"{src}/{release.pollutant.name}/{release.start:%Y%m%dT%H%MZ}", now or release.start,
                        suspects, release)
        observed, source = bool(args.observed), args.discharger
    sent = inp.now if inp.now.tzinfo is not None else inp.now.replace(tzinfo=UTC)
    incident = args.incident or inp.incident
    identifier = args.identifier or f"{incident}/{args.msg_type.lower()}/{sent:%Y%m%dT%H%M%SZ}"
    checklist = None if args.msg_type == "Cancel" else plan(net, inp, load_policy(args.policy))
    try:
        if inp.do_event is not None:
            facts = facts_from_do_event(net, inp.do_event, checklist, alert_id=identifier, incident_id=incident,
                                        sent=sent, level=args.level)
        else:
            assert inp.release is not None
            fc = forecast(net, inp.release, kinds=("station", "intake"), threshold_g_m3=args.threshold_mg_l,
                          wind_ms=args.wind_ms)
            facts = facts_from_forecast(net, fc, checklist, alert_id=identifier, incident_id=incident, sent=sent,
                                        level=args.level, observed=observed or bool(args.observed), source=source)
        xml = build_cap(facts, msg_type=args.msg_type, references=refs, sender=args.sender)
    except CapError as err:
        raise CliError(str(err)) from err
    if args.output:
        Path(args.output).write_text(xml, encoding="utf-8")
        print(f"wrote CAP 1.2 {args.msg_type} {identifier} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(xml)
    return 0

def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("detect", help="find anomalies, sensor faults and incidents in station readings",
                       description="Detect water events (GB 3838 exceedance, persistence, N-day daily means, sudden "
                                   "change against a daily-cycle baseline, upstream-downstream increments) and label "
                                   "sensor faults. READINGS is a CSV with columns station_id, parameter, time "
                                   "(ISO 8601 with offset), value, unit (mg/L, ug/L, degC, m3/s...), flag.")
    t.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    t.add_argument("readings", metavar="READINGS.csv", help="station readings (columns above)")
    t.add_argument("--json", action="store_true", help="print one JSON object (rejected rows, faults, anomalies, "
                   "incidents)")
    t.set_defaults(func=cmd_detect)

    r = sub.add_parser("trace", help="rank the upstream sources of an anomaly",
                       description="Rank every registered discharger upstream of the station and an unregistered "
                                   "source on every upstream reach, with posterior probability, distance [m], travel "
                                   "time [s], fitted release start and mass [kg] (pulse) or rate [kg/s] (a continuous "
                                   "release still going on, or the steady DO model), and the evidence terms.")
    r.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    r.add_argument("readings", metavar="READINGS.csv", help="station readings (see `rivertrace detect --help`)")
    r.add_argument("--station", required=True, help="station where the anomaly is seen")
    r.add_argument("--parameter", required=True, help="the anomalous item (petroleum, NH3-N, DO, ...)")
    r.add_argument("--horizon-h", type=positive(), default=72.0, metavar="H", help="travel-time horizon of the search [h] (default 72)")
    r.add_argument("--temperature-c", type=float, default=25.0, metavar="T",
                   help="water temperature for the DO model [degC] (default 25)")
    r.add_argument("--release", choices=("auto", "pulse", "continuous"), default="auto",
                   help="release model (not DO): a pulse (fit start and mass), a continuous release (start and "
                        "rate), or auto (default): continuous when the excess at the station rises to a plateau "
                        "that lasts to the end of the record")
    r.add_argument("--operations", metavar="JSON", help="power-meter / effluent-monitor evidence per discharger "
                   "(JSON object: discharger id -> {production_on_treatment_off, effluent_exceedance, violations})")
    r.add_argument("--top", type=positive(int), default=10, metavar="N",
                   help="candidates to print [-] (text output; default 10)")
    r.add_argument("--now", metavar="TIME", help="earliest time for the grab sample (ISO 8601 with offset; "
                   "default the detection time)")
    r.add_argument("--json", action="store_true", help="print one JSON object (candidates in rank order, groups "
                   "that cannot be told apart, and the grab sample and operations checks that would split the first)")
    r.set_defaults(func=cmd_trace)

    rp = sub.add_parser("replay", help="write the readings of a reference incident (model-generated) as CSV",
                        description="Synthesise the station readings of the Ruxi oil or Puhe DO incident on the "
                                    "bundled basins (seeded; see tracer/scenarios.py for the assumptions).")
    rp.add_argument("incident", choices=("ruxi", "puhe"), help="reference incident: ruxi (oil film) or puhe (low DO)")
    rp.add_argument("-o", "--output", required=True, metavar="READINGS.csv", help="CSV to write")
    rp.add_argument("--seed", type=int, default=0, metavar="N",
                    help="random seed of the measurement noise [-] (integer, default 0; same seed, same CSV)")
    rp.set_defaults(func=cmd_replay, outputs={"output": "--output"})

    pl = sub.add_parser("plan", help="the disposal checklist: actions, departments, deadlines",
                        description="Plan the response to a known release (--discharger, --mass-kg, --pollutant, --start) "
                                    "or to an anomaly in readings (READINGS.csv --station --parameter: trace first). "
                                    "Actions: halt_discharge, interception, dilution_release, intake_suspension, "
                                    "monitoring, notify; each with department, target, deadline, time window, priority, "
                                    "rationale with the numbers used, and status. Times are in the network's time zone "
                                    "(its 'timezone', default Asia/Shanghai): ISO 8601 with offset in --json, date, "
                                    "time and zone in the Markdown form.")
    pl.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    pl.add_argument("readings", metavar="READINGS.csv", nargs="?", help="station readings (anomaly mode)")
    pl.add_argument("--station", help="anomaly station (with READINGS.csv)")
    pl.add_argument("--parameter", help="anomalous item (with READINGS.csv)")
    pl.add_argument("--discharger", metavar="ID", help="a known release at this discharger")
    pl.add_argument("--mass-kg", type=float, metavar="M", help="released mass [kg]")
    pl.add_argument("--duration-s", type=float, metavar="T", help="release duration [s] (constant rate M/T)")
    pl.add_argument("--pollutant", metavar="NAME", help="GB 3838 item or 'tracer'")
    pl.add_argument("--decay-per-day", type=float, metavar="K", help="first-order decay [1/day] (default 0)")
    pl.add_argument("--wind-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    pl.add_argument("--start", metavar="ISO8601", help="release start, ISO 8601 with offset (known release)")
    pl.add_argument("--now", metavar="ISO8601", help="when the plan is made, ISO 8601 with offset "
                    "(default: detection time or release start)")
    pl.add_argument("--temperature-c", type=float, default=25.0, metavar="T",
                    help="water temperature for DO [degC] (default 25)")
    pl.add_argument("--policy", metavar="JSON", help="policy overrides, a JSON file (margins [s], thresholds, "
                    "roles)")
    form = pl.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine form (actions list)")
    form.add_argument("--markdown", action="store_true", help="human form (default)")
    pl.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the Markdown form (default zh)")
    pl.set_defaults(func=cmd_plan)

    cp = sub.add_parser("cap", help="a CAP 1.2 alert (OASIS Common Alerting Protocol) for a release or an anomaly",
                        description="Forecast a known release (analytic engine), or trace an anomaly in READINGS.csv "
                                    "(--station, --parameter; a DO sag is reported as observed at the station), plan "
                                    "the response, and write the "
                                    "alert as one CAP 1.2 XML document: identifier, msgType Alert/Update/Cancel with "
                                    "references, info blocks in zh-CN and en, a polygon around the affected river "
                                    "stretch and circles around affected intakes; urgency, severity and certainty "
                                    "mapped as documented in server/cap.py.")
    cp.add_argument("network", metavar="NETWORK", help="network .json, .gpkg, shapefile directory or demo:NAME")
    cp.add_argument("readings", metavar="READINGS.csv", nargs="?", help="station readings (anomaly mode)")
    cp.add_argument("--station", help="anomaly station (with READINGS.csv)")
    cp.add_argument("--parameter", help="anomalous item (with READINGS.csv)")
    cp.add_argument("--temperature-c", type=float, default=25.0, metavar="T",
                    help="water temperature for DO [degC] (default 25)")
    add_release_arguments(cp, start_help="release start, ISO 8601 with offset (a known release: required, CAP "
                                         "carries clock times)", optional=True)
    msg = cp.add_argument_group("message")
    msg.add_argument("--msg-type", choices=("Alert", "Update", "Cancel"), default="Alert",
                     help="Alert (first message), Update or Cancel (need --reference; default Alert)")
    msg.add_argument("--reference", action="append", default=[], metavar="SENDER,ID,SENT",
                     help="an earlier message this one updates or cancels (repeatable; SENT is ISO 8601 with offset)")
    msg.add_argument("--identifier", metavar="ID", help="CAP identifier = the alert id (default: built from the "
                     "incident, message type and time)")
    msg.add_argument("--incident", metavar="ID", help="incident id (default: source/pollutant/start)")
    msg.add_argument("--sender", default="rivertrace", help="CAP sender, no spaces or commas (default rivertrace)")
    msg.add_argument("--now", metavar="ISO8601", help="when the alert is sent, ISO 8601 with offset (default: the "
                     "release start, or the detection time)")
    msg.add_argument("--level", choices=("low", "moderate", "high", "critical"),
                     help="detection severity level of the incident (raises CAP severity; default none)")
    msg.add_argument("--observed", action="store_true",
                     help="the anomaly was measured at a station (certainty Observed; default Likely)")
    msg.add_argument("--policy", metavar="JSON", help="policy overrides for the checklist (JSON file)")
    cp.add_argument("-o", "--output", metavar="ALERT.xml", help="file to write (default: standard output)")
    cp.set_defaults(func=cmd_cap, outputs={"output": "--output"})
