"""Issue 12: the trigger to screen is durable. A real server process is killed (SIGKILL) right after it
acknowledged the Ruxi readings, before its background pipeline could screen them; the restarted server
opens the incident. The reference is the in-process one-shot screening of the same readings (the id it
gives), which does not go through a crash at all."""

import signal
import time

from test_durability import _free_port, _start

from server.client import RivertraceClient
from server.storage import Store
from tracer.scenarios import ruxi_replay


def test_readings_acknowledged_just_before_a_sigkill_are_screened_after_the_restart(tmp_path, ruxi_doc):
    db, port = tmp_path / "rt.db", _free_port()
    proc, ch = _start(db, port)
    ch.close()
    try:
        with RivertraceClient(f"127.0.0.1:{port}") as c:
            c.put_network("ruxi", ruxi_doc)
            frame = ruxi_replay().readings.frame.assign(unit="mg/L")
            acks = c.ingest("ruxi", frame, batch=len(frame))  # one batch: acknowledged means stored
            proc.send_signal(signal.SIGKILL)  # at once: the screening (seconds on Ruxi) has not finished
        proc.wait(10)
        assert sum(a.stored for a in acks) == len(frame)
        store = Store(db)
        try:
            assert store.count_readings("ruxi") == len(frame)
            # the kill must land before the pipeline stored anything, or this test shows nothing
            with store.transaction() as con:
                assert con.execute("SELECT COUNT(*) FROM incidents").fetchone()[0] == 0
        finally:
            store.close()
    finally:
        if proc.poll() is None:
            proc.kill()

    proc, ch = _start(db, port)
    ch.close()
    try:
        with RivertraceClient(f"127.0.0.1:{port}") as c:
            deadline = time.monotonic() + 90
            ids: list[str] = []
            while time.monotonic() < deadline and not ids:
                ids = [i.id for i in c.incidents("ruxi")]
                time.sleep(0.5)
        assert len(ids) == 1 and ids[0].startswith("ruxi:RX-OILSPOT/petroleum/"), ids
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
