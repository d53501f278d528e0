"""The HJ 212 gateway: online monitors' data in over TCP (HJ 212-2017, and HJ 212-2025 where it differs).

``protocol`` (framing, CRC, parsing, answers) and ``codes`` (the code tables) are pure; ``ingest``
turns a packet into rows; ``gateway`` is the TCP server, started by :func:`start_gateway`.
"""

from .gateway import Gateway, start_gateway

__all__ = ["Gateway", "start_gateway"]
