"""Offline: the values of `stages/config.py` that are still the shipped placeholders, with the line to edit.

A placeholder is recognized by its value, never by where it sits: an account id of one repeated digit,
a domain under a name RFC 2606 reserves (`example.com`, `.test`, ...), a hosted zone id whose digits are
all zeros, one of the shipped signing keys (by fingerprint), an address left at `None`, a repository of
`example-org`, a connection ARN with the all-zero id. The line is found in the module's source (`ast`):
the keyword argument of the config's call, following `dataclasses.replace(...)` and module-level names.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from stages import config as config_module
from stages.config import EnvironmentConfig, PipelineConfig

PLACEHOLDER_KEY_FINGERPRINTS = frozenset({"f91364b56aa3", "f4b39a858524"})
"""`MediaSigningKey.fingerprint` of the signing keys `stages/config.py` ships (their private halves were
never kept): staging's, then prod's."""
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
"""RFC 2606: second-level names reserved for documentation."""
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
"""RFC 2606: top-level names reserved for documentation and tests."""

FieldPath = tuple[str | int, ...]
"""Where a value sits in a config: `("account",)`, `("media_signing_keys", 0, "public_key")`."""


@dataclass(frozen=True)
class Placeholder:
    variable: str
    """The config's name in the module, e.g. `STAGING`."""
    path: FieldPath
    value: str
    what: str
    """What to put there instead."""
    file: str
    line: int | None
    """None for a config the module does not bind to a name (made elsewhere, e.g. in a test)."""

    @property
    def field(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
        return text

    @property
    def where(self) -> str:
        """`stages/config.py:<line>: STAGING.account = 111111111111`."""
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.variable}.{self.field} = {self.value}"

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def is_placeholder_account(account: str) -> bool:
    """`111111111111` and its kind: one digit repeated (no real account id looks like that)."""
    return len(set(account)) == 1


def is_reserved_domain(name: str) -> bool:
    """A name under `example.com`/`.net`/`.org` or under a reserved top-level name (RFC 2606)."""
    name = name.lower().rstrip(".")
    if any(name == domain or name.endswith("." + domain) for domain in RESERVED_DOMAINS):
        return True
    return name.rsplit(".", 1)[-1] in RESERVED_TLDS


def is_placeholder_zone_id(zone_id: str) -> bool:
    """`Z0000000000000STAGING`: a long run of zeros and no other digit."""
    digits = {character for character in zone_id if character.isdigit()}
    return zone_id.count("0") >= 8 and digits == {"0"}


def is_placeholder_connection(arn: str) -> bool:
    """A connection ARN whose id (`connection/<uuid>`) is all zeros."""
    connection_id = arn.rsplit("/", 1)[-1]
    return set(connection_id.replace("-", "")) == {"0"}


def is_placeholder_repository(repository: str) -> bool:
    """`example-org/yoctogram-deploy`: an owner named `example...`."""
    return repository.split("/", 1)[0].lower().startswith("example")


def environment_placeholders(config: EnvironmentConfig) -> list[tuple[FieldPath, str, str]]:
    """(where, value, what to put there) of every placeholder of one environment's config."""
    found: list[tuple[FieldPath, str, str]] = []
    if is_placeholder_account(config.account):
        found.append(
            (
                ("account",),
                config.account,
                f"the 12-digit id of your {config.name} account (`aws sts get-caller-identity` with its credentials)",
            )
        )
    for field, what in (
        ("domain_name", "the site's domain, a name in your hosted zone"),
        ("hosted_zone_name", "the name of your public Route 53 zone that holds the site's domain"),
        ("origin_domain_name", "a name in that zone for the load balancer, e.g. origin.<domain>"),
    ):
        value = getattr(config, field)
        if is_reserved_domain(value):
            found.append(((field,), value, what))
    if is_placeholder_zone_id(config.hosted_zone_id):
        found.append(
            (
                ("hosted_zone_id",),
                config.hosted_zone_id,
                f"the id of that zone in the {config.name} account "
                f"(`aws route53 list-hosted-zones-by-name --dns-name {config.hosted_zone_name}`)",
            )
        )
    for index, key in enumerate(config.media_signing_keys):
        if key.fingerprint in PLACEHOLDER_KEY_FINGERPRINTS:
            found.append(
                (
                    ("media_signing_keys", index, "public_key"),
                    f"<the shipped key {key.fingerprint}>",
                    "the public half (PEM) of your own signing key, and its fingerprint in "
                    "active_media_signing_key (stages/runbooks/media-signing-key.md; a config error prints it)",
                )
            )
    if config.alarm_email is None:
        found.append((("alarm_email",), "None", "the address that receives the alarms"))
    return found


def pipeline_placeholders(config: PipelineConfig) -> list[tuple[FieldPath, str, str]]:
    """(where, value, what to put there) of every placeholder of the pipeline's config."""
    found: list[tuple[FieldPath, str, str]] = []
    if is_placeholder_account(config.account):
        found.append(
            (
                ("account",),
                config.account,
                "the 12-digit id of the account the pipeline lives in (a tools account, or an environment's)",
            )
        )
    if is_placeholder_repository(config.repository):
        found.append((("repository",), config.repository, "`owner/name` of your repository"))
    if is_placeholder_connection(config.connection_arn):
        found.append(
            (
                ("connection_arn",),
                config.connection_arn,
                "the ARN of your connection once it is Available (docs/deploying.md, One-time setup: connect the repository)",
            )
        )
    if config.notification_email is None:
        found.append(
            (
                ("notification_email",),
                "None",
                "the address told of approvals waiting, permission broadening and failed runs",
            )
        )
    return found


def placeholders(config: EnvironmentConfig | PipelineConfig) -> list[tuple[FieldPath, str, str]]:
    """(where, value, what to put there) of every placeholder of a config object."""
    if isinstance(config, PipelineConfig):
        return pipeline_placeholders(config)
    return environment_placeholders(config)


# --- where to edit -------------------------------------------------------------------------------------
class SourceLocator:
    """Finds the line of a config value in its module's source."""

    def __init__(self, source: str) -> None:
        tree = ast.parse(source)
        self.assignments: dict[str, ast.stmt] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.assignments[target.id] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.assignments[node.target.id] = node

    def line(self, variable: str, path: Sequence[str | int]) -> int | None:
        """The line to edit for `variable`'s value at `path`, or the variable's own line as a fallback
        (a field left at its default), or None when the module does not assign `variable`."""
        statement = self.assignments.get(variable)
        if statement is None:
            return None
        node = self._find(self._value(statement), tuple(path), set())
        return (node or statement).lineno

    @staticmethod
    def _value(statement: ast.stmt) -> ast.expr | None:
        if isinstance(statement, ast.Assign | ast.AnnAssign):
            return statement.value
        return None

    def _follow(self, expression: ast.expr | None, seen: set[str]) -> ast.expr | None:
        """A module-level name stands for its value."""
        while (
            isinstance(expression, ast.Name)
            and expression.id in self.assignments
            and expression.id not in seen
        ):
            seen.add(expression.id)
            expression = self._value(self.assignments[expression.id])
        return expression

    def _find(
        self, expression: ast.expr | None, path: FieldPath, seen: set[str]
    ) -> ast.expr | ast.keyword | ast.stmt | None:
        expression = self._follow(expression, seen)
        if not path or expression is None:
            return expression
        key, rest = path[0], path[1:]
        if isinstance(key, int):
            if isinstance(expression, ast.Tuple | ast.List) and key < len(expression.elts):
                element = expression.elts[key]
                return self._find(element, rest, seen) if rest else element
            return None
        if not isinstance(expression, ast.Call):
            return None
        keyword = next((k for k in expression.keywords if k.arg == key), None)
        if keyword is not None:
            if rest:
                return self._find(keyword.value, rest, seen)
            value = keyword.value
            # `account=_STAGING_ACCOUNT`: the line to edit is the name's assignment.
            if isinstance(value, ast.Name) and value.id in self.assignments:
                return self.assignments[value.id]
            return keyword
        # `dataclasses.replace(BASE, ...)` without this field: it is BASE's.
        if _is_replace(expression.func) and expression.args:
            return self._find(expression.args[0], path, seen)
        return None


def _is_replace(function: ast.expr) -> bool:
    return (isinstance(function, ast.Attribute) and function.attr == "replace") or (
        isinstance(function, ast.Name) and function.id == "replace"
    )


def _display_path(path: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


@cache
def _module_source(module: ModuleType) -> tuple[str, SourceLocator]:
    source_file = Path(inspect.getsourcefile(module) or "")
    return _display_path(source_file), SourceLocator(source_file.read_text())


def variable_name(module: ModuleType, config: object) -> str:
    """The module-level name a config object is bound to (e.g. `STAGING`)."""
    for name, value in vars(module).items():
        if value is config and name.isupper() and not name.startswith("_"):
            return name
    for name, value in vars(module).items():
        if value is config:
            return name
    raise LookupError(f"{module.__name__} binds no name to {config!r}")


def locate(
    config: EnvironmentConfig | PipelineConfig, module: ModuleType = config_module
) -> list[Placeholder]:
    """Every placeholder of a config defined in `module`, with the file and line to edit."""
    file, locator = _module_source(module)
    try:
        variable: str | None = variable_name(module, config)
    except LookupError:
        variable = None
    found = [
        Placeholder(
            variable=variable or config.name.upper(),
            path=path,
            value=value,
            what=what,
            file=file,
            line=locator.line(variable, path) if variable else None,
        )
        for path, value, what in placeholders(config)
    ]
    return sorted(found, key=lambda placeholder: placeholder.line or 0)


def config_line(
    config: EnvironmentConfig | PipelineConfig, path: Sequence[str | int], module: ModuleType = config_module
) -> str:
    """`stages/config.py:<line>` of a config value, for a fix that says where to edit."""
    file, locator = _module_source(module)
    try:
        line = locator.line(variable_name(module, config), path)
    except LookupError:
        line = None
    return f"{file}:{line}" if line else file
