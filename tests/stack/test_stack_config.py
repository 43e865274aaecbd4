"""A stack's settings name it: what a benchmark or MLOPS_TEST_STACK file holds reads back."""

from __future__ import annotations

from pathlib import Path

from include.mlops.stack import StackConfig


def test_settings_read_back_to_the_same_stack(tmp_path: Path) -> None:
    for profile in ("embedded", "scaled"):
        config = StackConfig.on_free_ports(tmp_path / profile, profile=profile)
        assert StackConfig.from_env(config.settings()) == config
