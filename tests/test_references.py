"""How the stacks of a stage refer to each other: few cross-stack lookups, and none that a name can replace.

CloudFormation resolves every `Fn::GetStackOutput` occurrence on its own (aws/aws-cdk#38010: a deploy
throttled at 75 lookups); what the stacks name from config is referred to by that name instead.
"""

from __future__ import annotations

import json
from typing import Any

from stages import names
from tests.templates import UNITS, Synthesized

MAX_LOOKUPS_PER_TEMPLATE = 30


def lookups(template: dict[str, Any]) -> list[str]:
    """The output name of every `Fn::GetStackOutput` in a template, once per occurrence."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Fn::GetStackOutput" in value:
                found.append(value["Fn::GetStackOutput"]["OutputName"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template)
    return found


def test_every_template_holds_few_cross_stack_lookups(synthesized: Synthesized) -> None:
    counts = {
        f"{name}/{unit}": len(lookups(stage.raw[unit]))
        for name, stage in synthesized.stages.items()
        for unit in UNITS
    }
    print("Fn::GetStackOutput per template:", json.dumps(counts))
    assert max(counts.values()) < MAX_LOOKUPS_PER_TEMPLATE, counts


def test_what_has_a_fixed_name_is_referred_to_by_it(synthesized: Synthesized) -> None:
    """No template looks up, from another stack, a resource that `stages.names` names."""
    for stage in synthesized.stages.values():
        fixed = {n.name for n in names.fixed_names(stage.config)}
        # The resources that carry one of the fixed names as a top-level property (its owner, and the
        # resources that refer to it by that name).
        producers = {
            resource
            for unit in UNITS
            for resource, body in stage.raw[unit]["Resources"].items()
            if any(isinstance(value, str) and value in fixed for value in body.get("Properties", {}).values())
        }
        assert len(producers) >= len(fixed) - 1, producers  # the ECS and database clusters share a name
        for unit in UNITS:
            for output in lookups(stage.raw[unit]):
                assert not any(resource in output for resource in producers), (
                    stage.config.name,
                    unit,
                    output,
                )
