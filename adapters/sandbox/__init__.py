"""Sandbox Integration Service: a real HTTP server that simulates Telegram.

Used when no ``INTEGRATION_SERVICE_URL`` is configured (demo, tests). Its
answers are deterministic per target (``behaviour.py``) and everything it did
can be inspected under ``/sandbox/`` (``ledger.py``).
"""

from .app import create_app
from .config import SandboxAccount, SandboxConfig, SandboxLimits
from .server import SandboxServer, run_sandbox

__all__ = ["SandboxAccount", "SandboxConfig", "SandboxLimits", "SandboxServer", "create_app", "run_sandbox"]
