"""Run every vendor sandbox on 127.0.0.1 (ports in connectors.registry.SANDBOX_PORTS) until SIGTERM or Ctrl-C.

python -m connectors.sandbox [--host 127.0.0.1] [--seed 42] [--only kantata jira]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading

from connectors.sandbox.firm import Firm
from connectors.sandbox.server import SANDBOX_PORTS, RunningSandbox, serve_in_thread

logger = logging.getLogger("connectors.sandbox")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=42, help="the firm's seed; every sandbox shares it")
    parser.add_argument("--only", nargs="*", choices=sorted(SANDBOX_PORTS), help="run only these vendors")
    parser.add_argument("--port-offset", type=int, default=0, help="added to every port, to run a second set")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    firm = Firm(seed=args.seed)
    running: list[RunningSandbox] = []
    for vendor, port in SANDBOX_PORTS.items():
        if args.only and vendor not in args.only:
            continue
        # Imported lazily so one vendor not built yet (or broken) does not stop the others.
        try:
            module = importlib.import_module(f"connectors.{vendor}.sandbox")
            app = module.create_app(firm)
        except Exception as exc:  # any failure of one vendor is reported and skipped
            logger.warning("%s sandbox not started: %s", vendor, exc)
            continue
        try:
            sandbox = serve_in_thread(app, host=args.host, port=port + args.port_offset)
        except OSError as exc:
            logger.warning("%s sandbox not started: port %d: %s", vendor, port + args.port_offset, exc)
            continue
        running.append(sandbox)
        print(f"{vendor:<11} {sandbox.url}", flush=True)

    if not running:
        logger.error("no sandbox started")
        return 1

    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.wait(1.0):
        pass
    for sandbox in running:
        sandbox.stop()
    logger.info("sandboxes stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
