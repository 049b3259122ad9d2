#!/usr/bin/env python3
"""The two commands of SysGenPro Connect, needing nothing but Python 3.11+:

    python3 dev.py run    # web + worker + beat + vendor sandboxes + demo data, on embedded defaults
    python3 dev.py test   # the whole test suite

Both create .venv and install the project into it the first time (and again when
pyproject.toml changes), then hand over to the project's own code.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python3
        sys.exit("SysGenPro Connect needs Python 3.11 or newer.")
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{digest}"
    if not stamp.exists():
        print("Installing dependencies into .venv (first run takes a minute) ...", flush=True)
        pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True, cwd=ROOT)
        for old in VENV.glob(".installed-*"):
            old.unlink()
        stamp.touch()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in {"run", "test"}:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    ensure_environment()
    env = {**os.environ, "PORTAL_ENV": os.environ.get("PORTAL_ENV", "dev"), "PYTHONUNBUFFERED": "1"}
    if command == "run":
        args = [str(PYTHON), "-m", "portal.stack", *argv[1:]]
    else:
        env["PORTAL_ENV"] = "test"
        args = [str(PYTHON), "-m", "pytest", *argv[1:]]
    os.chdir(ROOT)
    os.execve(str(PYTHON), args, env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
