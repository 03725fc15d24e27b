"""cfn-lint over every synthesized template, with the repository's .cfnlintrc."""

from __future__ import annotations

import json
import re

from tests.templates import ROOT, Synthesized


def test_every_template_is_clean(synthesized: Synthesized) -> None:
    lint = synthesized.cfn_lint["stages"]  # started by the session's synthesis (tests/conftest.py)
    templates = [arg for arg in lint.argv if arg.endswith(".template.json")]
    assert len(templates) == 10  # 2 stages x edge, network, data, migrations, app
    code, output = lint.result()
    assert code == 0, output


def test_each_ignored_rule_says_why() -> None:
    lines = (ROOT / ".cfnlintrc").read_text().splitlines()
    start = lines.index("ignore_checks:")
    ignored = [
        (i, m.group(1)) for i, line in enumerate(lines) if (m := re.match(r"^\s*-\s*([EWI]\d{4})\s*$", line))
    ]
    assert ignored, "no ignored rule listed"
    for index, rule in ignored:
        assert index > start
        first = index - 1
        while first > start + 1 and lines[first - 1].strip().startswith("#"):
            first -= 1
        assert lines[first].strip().startswith(f"# {rule} "), f"{rule} has no comment saying why"
        assert not rule.startswith("E"), f"errors are fixed, not ignored: {rule}"


def test_cfn_lint_is_the_one_template_linter(synthesized: Synthesized) -> None:
    """The CDK's built-in validator runs cfn-lint's rules again at every synthesis (compiled to
    WebAssembly, about 3 s, its errors only warnings by default): cfn-lint above is the gate, so the
    built-in copy is off. The synthesis's validation report (cdk-nag's plugin writes one) lists no
    report of it."""
    reports = list(synthesized.outdir.rglob("validation-report.json"))
    plugins = {r["pluginName"] for path in reports for r in json.loads(path.read_text())["pluginReports"]}
    assert reports and "CloudFormation Validate" not in plugins, plugins
