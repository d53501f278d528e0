"""``rivertrace serve`` and ``demo``: the gRPC service."""

from __future__ import annotations

import argparse

from .common import CliError


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from server.app import serve
    from server.config import ConfigError, load_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config, db=args.db, port=args.port, host=args.host, hj212_port=args.hj212_port)
    except ConfigError as err:
        raise CliError(str(err)) from err
    return serve(config)


def cmd_demo(args: argparse.Namespace) -> int:
    import sys

    from server.demo import run_demo

    # the stream of this call, not the one bound when server.demo was first imported
    return run_demo(lang=args.lang, out=sys.stdout)


def register(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser("serve", help="run the gRPC service",
                        description="Run the rivertrace gRPC service (network, monitoring; health checking and "
                                    "reflection, so grpcurl works). Embedded defaults: SQLite file rivertrace.db "
                                    "(WAL), 127.0.0.1:50051, open mode (no tokens; loopback only). See server/config.py "
                                    "for the TOML config (tokens with roles, TLS).")
    sv.add_argument("--config", metavar="FILE.toml", help="TOML configuration (tokens with roles, TLS, port, database)")
    sv.add_argument("--db", metavar="PATH", help="SQLite file (default rivertrace.db)")
    sv.add_argument("--host", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, metavar="N", help="TCP port [0-65535] (default 50051; 0 picks a free one)")
    sv.add_argument("--hj212-port", type=int, metavar="N", help="also run the HJ 212 gateway for online monitors "
                    "on TCP port N [0-65535] (0 picks a free one); see [hj212] in server/config.py")
    sv.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="run the bundled Ruxi and Puhe incident basins end to end",
                       description="Replay the two reference incidents (Ruxi oil film, Puhe low oxygen) on the bundled demo basins and "
                                   "print what a duty officer would see.")
    d.add_argument("--lang", choices=("zh", "en", "both"), default="both", help="language of the output (default both)")
    d.set_defaults(func=cmd_demo)
