"""Where the fault suite cannot run (not root, no ``ip``, no redis-server) it says why."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.faults import netns


def test_not_root_names_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = netns.unavailable_reason()
    assert reason is not None
    assert "needs root" in reason


@pytest.mark.parametrize(("tool", "words"), [("ip", "`ip` command"), ("redis-server", "redis")])
def test_a_missing_tool_is_named(monkeypatch: pytest.MonkeyPatch, tool: str, words: str) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == tool else real(name))
    reason = netns.unavailable_reason()
    assert reason is not None
    assert words in reason
