"""A Stack that never looks anything up at synth time."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from stages.config import EnvironmentConfig


class PinnedStack(cdk.Stack):
    """Base of the stage's stacks: environment and availability zones come from config.

    Without the override, the VPC (even when given explicit zones) asks the stack for its zones, which
    records an `availability-zones` context lookup that the CLI would try to resolve with credentials.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        self._pinned_availability_zones = list(config.availability_zones)
        super().__init__(
            scope, construct_id, env=config.env, stack_name=config.stack_name(construct_id.lower()), **kwargs
        )

    @property
    def availability_zones(self) -> list[str]:
        """The configured zones (no lookup)."""
        return self._pinned_availability_zones
