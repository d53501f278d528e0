"""HJ 212 packets: framing, CRC, parsing and answers. Pure functions, no network I/O.

A packet (HJ 212-2017, 通讯包结构, the packet structure) is::

    ##  NNNN  QN=...;ST=..;CN=....;PW=......;MN=...;Flag=.;CP=&&...&&  XXXX  \\r\\n
    |   |     data segment (数据段), NNNN bytes                          |     CRLF
    |   4 decimal digits: the data segment's length                     CRC16 of the data segment,
    header                                                              4 hex digits

The data segment's fields: ``QN`` request number ``YYYYMMDDhhmmsszzz`` (echoed in answers), ``ST``
system code, ``CN`` command code, ``PW`` password, ``MN`` device id, ``Flag`` (bits ``V5..V0 D A``:
standard version, D = the packet is one of several (``PNUM``/``PNO`` follow), A = an answer is
requested), then ``CP=&&...&&`` the command parameters: ``;``-separated groups of ``,``-separated
``key=value`` pairs such as ``DataTime=20160801085857;w01018-Rtd=50.2,w01018-Flag=N``.

The CRC (HJ 212-2017, its CRC appendix, CRC 校验算法) is computed over the data segment's bytes:
register 0xFFFF; for each byte, ``crc = (crc >> 8) ^ byte``, then eight times: shift right, and if the bit shifted out
was 1, xor 0xA001; the result is written as 4 upper-case hex digits. It is *not* CRC-16/MODBUS (which
xors the byte into the low half without first shifting the register). The standard's example
``QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;
CP=&&RtdInterval=30&&`` has length 0101 and CRC 1C80. Here a 256-entry table does the eight steps
at once (``crc >> 8 ^ T[crc & 0xFF]``, the usual reflected-CRC identity); the tests check it against
the bitwise procedure and the example.

What HJ 212-2025 (replacing 2017 from 2026-01-01) changes, and what this module does about it. The
2025 text was not available to us in full; the points below are taken from implementers' notes that
quote it, and the ones marked "supported" are what the code does:

- ``Flag`` version bits ``000010`` (Flag 8-11). Supported: the version is read from the bits and
  the answers carry the version of the packet they answer.
- The length counts the data segment's *bytes* in UTF-8 (Chinese text may appear in CP).
  Supported for both versions: the length is always checked in bytes, and a data segment that is not
  UTF-8 is read as GB 18030 (older data loggers send GBK).
- Heartbeat ``CN=9015`` from the field unit, answered with ``9013``. Supported.
- ``MN`` becomes the 24-character hexadecimal network-access code the platform assigns at
  activation (CN 1001 hardware fingerprint). The gateway maps any MN (1-24 characters) through the
  network document, so a 2025 MN works; the activation dialogue itself is not implemented.
- CP of data commands (2000-2999, 1014, 3020) sent over the public internet is encrypted with SM4
  (ECB, no padding). Not supported: an encrypted CP does not parse as ``key=value`` pairs and the
  packet is refused with that reason. Run the gateway on a private link or VPN with plain CP.
- Power monitoring (ST 44) and key production conditions (ST 45) with CN 2011. Not supported: their
  codes are refused as an unsupported system code (the power-meter states still arrive over gRPC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from .codes import CN_DATA_ANSWER, QN_RTN, ST_SYSTEM, VERSIONS

HEADER: Final = b"##"
TAIL: Final = b"\r\n"
#: the largest data segment the 4-digit length can announce [bytes]
MAX_DATA_BYTES: Final = 9999
_HEAD_FIELDS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_REQUIRED = ("ST", "CN", "PW", "MN")
_FIELD_RE = re.compile(r"^[A-Za-z0-9]+$")
_MN_RE = re.compile(r"^[A-Za-z0-9]{1,24}$")
_QN_RE = re.compile(r"^\d{17}$")


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc16(data: bytes) -> int:
    """HJ 212 CRC16 of a data segment (HJ 212-2017 CRC appendix; see module doc).

    Parameters
    ----------
    data : bytes
        The data segment, from ``QN=`` (or the first field) to the closing ``&&`` of CP.

    Returns
    -------
    int
        The CRC in 0..0xFFFF; written in a packet as ``f"{crc:04X}"``.
    """
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        c = (crc >> 8) ^ byte
        crc = (c >> 8) ^ table[c & 0xFF]
    return crc


class Hj212Error(ValueError):
    """A packet the gateway refuses.

    ``reason`` is the counter it is counted under (``crc``, ``length``, ``unknown_mn``...), ``qn_rtn``
    the QnRtn code (HJ 212-2017 answer codes) of a 9011 answer, and ``packet`` the header fields read
    before the problem was found (to address that answer), or None.
    """

    def __init__(self, reason: str, message: str, qn_rtn: int = QN_RTN["refused"],
                 packet: Packet | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.qn_rtn = qn_rtn
        self.packet = packet


@dataclass(frozen=True, slots=True)
class Packet:
    """A parsed data segment. ``cp`` keeps CP's ``key=value`` pairs in order (keys are unique)."""

    st: str
    cn: str
    pw: str
    mn: str
    qn: str | None = None
    flag: int | None = None
    pnum: str | None = None
    pno: str | None = None
    cp: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def version(self) -> int:
        """Standard version bits (0: HJ/T 212-2005, 1: HJ 212-2017, 2: HJ 212-2025); 0 without Flag."""
        return 0 if self.flag is None else self.flag >> 2

    @property
    def answer_requested(self) -> bool:
        """Flag bit A: the sender waits for an answer."""
        return self.flag is not None and bool(self.flag & 1)

    @property
    def standard(self) -> str:
        return VERSIONS.get(self.version, f"unknown version {self.version}")


class FrameReader:
    """Cut a TCP byte stream into packets. ``feed`` returns, in order, each complete packet (bytes,
    header to CRLF) or an :class:`Hj212Error` for bytes that do not frame.

    Resynchronisation: a data segment never holds ``#`` or CRLF, so after a framing error the reader
    drops the bad bytes up to the next CRLF or ``##`` and carries on with the next packet. A length
    that does not match is found as soon as the packet's CRLF arrives (not by waiting for bytes that
    may never come).
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes | Hj212Error]:
        buf = self._buf
        buf += data
        out: list[bytes | Hj212Error] = []
        while buf:
            start = buf.find(HEADER)
            if start < 0:
                keep = 1 if buf.endswith(b"#") else 0
                junk = bytes(buf[: len(buf) - keep])
                del buf[: len(buf) - keep]
                if junk.strip():
                    out.append(Hj212Error("framing", f"{len(junk)} byte(s) outside a packet (no '##' header)"))
                break
            if start:
                junk = bytes(buf[:start])
                del buf[:start]
                if junk.strip():
                    out.append(Hj212Error("framing", f"{len(junk)} byte(s) before a '##' header"))
            if len(buf) < 6:
                break
            digits = bytes(buf[2:6])
            end_line = buf.find(TAIL, 2)
            if not digits.isdigit():
                out.append(Hj212Error("length", f"length field {digits!r} is not 4 decimal digits"))
                self._drop_bad(end_line)
                continue
            total = 6 + int(digits) + 4 + 2
            if end_line >= 0 and end_line != total - 2:
                got = end_line - 6 - 4
                out.append(Hj212Error("length", f"length field says {int(digits)} bytes but the packet ends "
                                                f"after {max(got, 0)} data bytes + CRC"))
                self._drop_bad(end_line)
                continue
            if len(buf) < total:
                break
            if end_line < 0:  # the whole announced packet is here and it has no CRLF where it must end
                out.append(Hj212Error("length", f"no CRLF after the {int(digits)}-byte data segment and CRC"))
                self._drop_bad(-1)
                continue
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out

    def _drop_bad(self, end_line: int) -> None:
        """Drop a bad packet: through its CRLF when it has one, else up to the next ``##``."""
        buf = self._buf
        nxt = buf.find(HEADER, 2)
        cut = end_line + 2 if end_line >= 0 and (nxt < 0 or end_line < nxt) else (nxt if nxt >= 0 else len(buf))
        del buf[:cut]

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a packet."""
        return len(self._buf)


def parse_frame(frame: bytes) -> Packet:
    """Check a framed packet's CRC and parse its data segment.

    Raises
    ------
    Hj212Error
        ``crc`` (its ``packet`` is the segment's header when that still parses, to address a QnRtn 9
        answer), ``encoding`` or ``syntax``.
    """
    n = int(frame[2:6])
    data, crc_text = frame[6:6 + n], frame[6 + n:10 + n]
    try:
        crc_sent = int(crc_text, 16) if re.fullmatch(rb"[0-9A-Fa-f]{4}", crc_text) else None
    except ValueError:
        crc_sent = None
    if crc_sent is None or crc_sent != crc16(data):
        try:
            head = parse_segment(_decode(data))
        except Hj212Error:
            head = None
        shown = crc_text.decode("ascii", "replace")
        raise Hj212Error("crc", f"CRC {shown!r} does not match the data segment (computed {crc16(data):04X})",
                         QN_RTN["crc"], head)
    return parse_segment(_decode(data))


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as err:
            raise Hj212Error("encoding", f"data segment is neither UTF-8 nor GB 18030: {err}") from err


def parse_segment(text: str) -> Packet:
    """Parse a data segment (``QN=...;...;CP=&&...&&``) into a :class:`Packet`.

    Raises
    ------
    Hj212Error
        ``syntax`` (QnRtn 100, or 6 for a bad Flag, 7 for a bad QN), naming the field.
    """
    idx = text.find("CP=&&")
    if idx < 0 or not text.endswith("&&") or len(text) < idx + 7:
        raise Hj212Error("syntax", "data segment has no CP=&&...&& at its end", QN_RTN["unknown"])
    head_text, cp_text = text[:idx], text[idx + 5:-2]
    if head_text and not head_text.endswith(";"):
        raise Hj212Error("syntax", "no ';' before CP", QN_RTN["unknown"])
    head: dict[str, str] = {}
    for item in head_text[:-1].split(";") if head_text else []:
        key, eq, value = item.partition("=")
        if not eq or key not in _HEAD_FIELDS:
            raise Hj212Error("syntax", f"data segment field {item!r} is not one of {', '.join(_HEAD_FIELDS)}=value",
                             QN_RTN["unknown"])
        if key in head:
            raise Hj212Error("syntax", f"data segment field {key} appears twice", QN_RTN["unknown"])
        head[key] = value
    missing = [k for k in _REQUIRED if not head.get(k)]
    if missing:
        raise Hj212Error("syntax", f"data segment lacks {', '.join(missing)}", QN_RTN["unknown"])
    flag = None
    if "Flag" in head:
        if not head["Flag"].isdigit() or int(head["Flag"]) > 255:
            raise Hj212Error("syntax", f"Flag {head['Flag']!r} is not an integer 0-255", QN_RTN["flag"])
        flag = int(head["Flag"])
    if "QN" in head and not _QN_RE.match(head["QN"]):
        raise Hj212Error("syntax", f"QN {head['QN']!r} is not YYYYMMDDhhmmsszzz (17 digits)", QN_RTN["qn"])
    if not _MN_RE.match(head["MN"]):
        raise Hj212Error("syntax", f"MN {head['MN']!r} is not 1-24 letters or digits", QN_RTN["mn"])
    if not (head["CN"].isdigit() and len(head["CN"]) == 4):
        raise Hj212Error("syntax", f"CN {head['CN']!r} is not 4 digits", QN_RTN["cn"])
    if not (head["ST"].isdigit() and len(head["ST"]) == 2):
        raise Hj212Error("syntax", f"ST {head['ST']!r} is not 2 digits", QN_RTN["st"])
    packet = Packet(st=head["ST"], cn=head["CN"], pw=head["PW"], mn=head["MN"], qn=head.get("QN"), flag=flag,
                    pnum=head.get("PNUM"), pno=head.get("PNO"))
    try:
        cp = parse_cp(cp_text)
    except Hj212Error as err:
        err.packet = packet
        raise
    return Packet(st=packet.st, cn=packet.cn, pw=packet.pw, mn=packet.mn, qn=packet.qn, flag=flag,
                  pnum=packet.pnum, pno=packet.pno, cp=MappingProxyType(cp))


def parse_cp(text: str) -> dict[str, str]:
    """CP's ``key=value`` pairs (groups separated by ``;``, pairs within a group by ``,``).

    Raises
    ------
    Hj212Error
        ``syntax``: a pair without ``=``, a bad key, or a key given twice.
    """
    out: dict[str, str] = {}
    if not text:
        return out
    for group in text.split(";"):
        for pair in group.split(","):
            key, eq, value = pair.partition("=")
            if not eq or not key or not _FIELD_RE.match(key.replace("-", "")):
                shown = pair if len(pair) <= 40 else pair[:40] + "..."
                raise Hj212Error("syntax", f"CP item {shown!r} is not key=value (an SM4-encrypted CP of "
                                           "HJ 212-2025 is not supported)", QN_RTN["unknown"])
            if key in out:
                raise Hj212Error("syntax", f"CP key {key!r} appears twice", QN_RTN["unknown"])
            out[key] = value
    return out


def encode_packet(segment: str) -> bytes:
    """Frame a data segment: ``##``, its byte length in 4 digits, the segment, CRC16, CRLF."""
    data = segment.encode("utf-8")
    if len(data) > MAX_DATA_BYTES:
        raise ValueError(f"data segment of {len(data)} bytes exceeds {MAX_DATA_BYTES}")
    return b"##%04d%s%04X\r\n" % (len(data), data, crc16(data))


def answer(packet: Packet, cn: str, cp: str = "") -> bytes:
    """An answer packet (host -> field unit) to ``packet``: its QN, PW and MN echoed, ST 91, the
    packet's version in Flag with no answer requested, and ``CP=&&cp&&``."""
    flag = packet.version << 2
    qn = f"QN={packet.qn};" if packet.qn else ""
    return encode_packet(f"{qn}ST={ST_SYSTEM};CN={cn};PW={packet.pw};MN={packet.mn};Flag={flag};CP=&&{cp}&&")


def data_answer(packet: Packet) -> bytes:
    """CN 9014 数据应答: the upload was received (and, here, stored)."""
    return answer(packet, CN_DATA_ANSWER)
