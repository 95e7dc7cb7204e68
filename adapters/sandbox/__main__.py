"""``python -m adapters.sandbox [--host H] [--port P] [--config file.json]``: serve the sandbox."""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import SandboxConfig
from .server import run_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--config", type=Path, help="SandboxConfig as JSON")
    args = parser.parse_args(argv)
    config = SandboxConfig.model_validate_json(args.config.read_text()) if args.config else SandboxConfig()
    run_sandbox(args.host, args.port, config)


if __name__ == "__main__":
    main()
