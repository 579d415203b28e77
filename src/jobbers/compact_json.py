"""The JSON text stores keep (kwargs, results, policies, script payloads).

One shared encoder: ``json.dumps`` with options builds a new one per call, which was a tenth of a
bulk submit's cost. The text is what ``json.dumps`` gives, integers of any size included.
"""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"))


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)
