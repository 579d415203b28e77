"""Which keys are masked: secrets by name or suffix, any case, any depth; nothing else."""

from __future__ import annotations

import pytest

from jobbers.redact import MASK, redact

SECRET = [
    "token",
    "Password",
    "passwd",
    "SECRET",
    "authorization",
    "jwt",
    "api_key",
    "apiKey",
    "X-Api-Key",
    "access_token",
    "accessToken",
    "refresh_token",
    "private_key",
    "client_secret",
    "DB_PASSWORD",
    "credentials",
    "aws_secret_access_key",
    "github_token",
]
VISIBLE = ["max_tokens", "tokenizer", "secretary", "password_hint_shown", "key", "sort_key", "name"]


@pytest.mark.parametrize("key", SECRET)
def test_secret_keys_are_masked_at_any_depth(key: str) -> None:
    value = {"outer": [{"inner": {key: "hunter2", "keep": 1}}]}
    assert redact(value) == {"outer": [{"inner": {key: MASK, "keep": 1}}]}


@pytest.mark.parametrize("key", VISIBLE)
def test_other_keys_stay_visible(key: str) -> None:
    assert redact({key: "shown"}) == {key: "shown"}
