"""Offline first: is the network there, where downloads are kept, what a saved model folder is.

A classroom may have bad Wi-Fi or none, so every download first asks `reachable` (a TCP
connection to the host, a few seconds at most, never a download) and says what to do
instead of hanging. Everything the engine keeps between runs lives under two roots:

    DATA_CACHE   downloaded datasets ($TLCORE_DATA, default ~/.cache/tlcore/datasets);
                 text sets in its `text/` folder
    state_dir()  the server's own state: time estimates and the run store
                 ($TLS_STATE_DIR, default ~/.cache/tlstudio)

Not for: model weights, which go to torchvision's and Hugging Face's standard caches
(tlcore.models.backbones, tlcore.text.bert).
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path

from tlcore.core import settings

DATA_CACHE = Path(os.environ.get("TLCORE_DATA", Path.home() / ".cache" / "tlcore" / "datasets"))


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Can we open a TCP connection to the URL's host (its port, else 443)? No download."""
    parsed = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def is_model_dir(path: str | os.PathLike) -> bool:
    """A folder holding a saved Hugging Face model (its config.json): usable as a text backbone."""
    return bool(str(path)) and os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json"))


def state_dir() -> Path:
    """Where the class server keeps its state (time estimates, the run store)."""
    return Path(settings.get("TLS_STATE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "tlstudio"))
