"""An HJ 212 encoder and a monitor's TCP client, written for the tests from the standard's text,
independent of ``server/hj212`` (nothing is imported from it).

HJ 212-2017 (通讯包结构, the packet structure): a packet is ``##``, the data segment's length as 4 decimal
digits, the data segment ``QN=..;ST=..;CN=..;PW=..;MN=..;Flag=..;CP=&&..&&``, its CRC16 as 4 hex
digits, and CRLF. Its CRC appendix (CRC 校验算法) gives the CRC as a procedure; :func:`crc16`
follows it step by step.
"""

import socket
import time

#: The standard's worked example (a 1062 "set real-time data interval" command): data segment, its
#: length and its CRC as the standard prints them (quoted identically by several independent public
#: HJ 212 implementations; we could not read the standard's PDF itself)
STANDARD_EXAMPLE_SEGMENT = ("QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
                            "Flag=5;CP=&&RtdInterval=30&&")
STANDARD_EXAMPLE_LENGTH = "0101"
STANDARD_EXAMPLE_CRC = "1C80"


def crc16(data: bytes) -> int:
    """HJ 212-2017 CRC appendix, step by step: the CRC register starts at 0xFFFF; each byte is XORed
    into the register shifted right by 8 bits; then 8 times the register is shifted right by one bit
    and, when the bit shifted out is 1, XORed with 0xA001."""
    register = 0xFFFF
    for byte in data:
        register = (register >> 8) ^ byte
        for _ in range(8):
            out = register & 0x0001
            register >>= 1
            if out:
                register ^= 0xA001
    return register


def frame(segment: str | bytes, *, crc: str | None = None, length: str | None = None, tail: bytes = b"\r\n") -> bytes:
    """``##`` + length + segment + CRC + CRLF; ``crc``/``length``/``tail`` override (to build bad packets)."""
    data = segment.encode("utf-8") if isinstance(segment, str) else segment
    length = f"{len(data):04d}" if length is None else length
    crc = f"{crc16(data):04X}" if crc is None else crc
    return b"##" + length.encode() + data + crc.encode() + tail


def segment(cn: str, mn: str, cp: str, *, qn: str | None = "20250715080000123", st: str = "21",
            pw: str = "123456", flag: int | None = 5) -> str:
    """A data segment; Flag 5 = version 1 (HJ 212-2017, bits V5..V0 = 000001) with A = 1 (answer)."""
    head = [f"QN={qn}"] if qn is not None else []
    head += [f"ST={st}", f"CN={cn}", f"PW={pw}", f"MN={mn}"]
    if flag is not None:
        head.append(f"Flag={flag}")
    return ";".join(head) + f";CP=&&{cp}&&"


def values_cp(datatime: str, values: dict[str, tuple[str, str]], field: str = "Rtd") -> str:
    """CP of a data upload: ``DataTime=..;code-Rtd=v,code-Flag=f;...`` (``field`` Avg for averages)."""
    groups = [f"DataTime={datatime}"] + [f"{code}-{field}={v},{code}-Flag={f}" for code, (v, f) in values.items()]
    return ";".join(groups)


def parse_answer(packet: bytes) -> dict[str, str]:
    """Fields of an answer packet, after checking its framing, length and CRC as the standard says."""
    assert packet[:2] == b"##" and packet[-2:] == b"\r\n", packet
    n = int(packet[2:6])
    data, crc = packet[6:6 + n], packet[6 + n:-2]
    assert len(packet) == 6 + n + 4 + 2, f"length field {n} does not match the packet {packet!r}"
    assert crc.decode() == f"{crc16(data):04X}", f"answer CRC {crc!r} is wrong for {data!r}"
    text = data.decode()
    head, cp = text.split("CP=&&", 1)
    fields = dict(item.split("=", 1) for item in head.rstrip(";").split(";"))
    fields["CP"] = cp[:-2]
    return fields


class Monitor:
    """A data logger's TCP connection to the gateway (127.0.0.1 only)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        # 10 s: an answer takes one SQLite commit (milliseconds); the margin covers a machine shared
        # by several test runs
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_packet(self, timeout: float | None = None) -> bytes | None:
        """The next CRLF-terminated packet; None when none arrives within ``timeout`` s or on EOF."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.sock.gettimeout())
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        packet, _, self.buf = self.buf.partition(b"\r\n")
        return packet + b"\r\n"

    def exchange(self, data: bytes) -> dict[str, str]:
        """Send a packet and parse the answer (which must come)."""
        self.send(data)
        reply = self.recv_packet()
        assert reply is not None, f"no answer to {data!r}"
        return parse_answer(reply)

    def close(self) -> None:
        self.sock.close()
