"""The image-scan gate (`pipeline.image_scan`) and its allowlist, against botocore-stubbed ECR: basic and
enhanced (Inspector) findings, allowlist entries live and expired, images nobody scans."""

from __future__ import annotations

import importlib
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline import image_scan, image_scan_allowlist
from pipeline.image_scan_allowlist import MAX_DAYS_AHEAD, Allowed, check

TODAY = date(2026, 1, 15)
REPOSITORY = "cdk-hnb659fds-container-assets-111111111111-us-west-2"
LOG_ROUTER = image_scan.Image("111111111111", "us-west-2", REPOSITORY, "a" * 64, names=("LogRouterImage",))
BACKEND = image_scan.Image(
    "111111111111",
    "us-west-2",
    REPOSITORY,
    "b" * 64,
    names=("Migration/TaskDefinition/Migrate/AssetImage", "Web/TaskDefinition/App/AssetImage"),
)


def never_sleeps(seconds: float) -> None:
    pytest.fail(f"waited {seconds} s for a scan that was already there")


def basic(cve: str, severity: str = "CRITICAL", package: str = "glibc") -> dict[str, Any]:
    """One finding of ECR's basic scanning, as DescribeImageScanFindings returns it."""
    return {
        "name": cve,
        "severity": severity,
        "uri": f"https://security-tracker.example/{cve}",
        "attributes": [
            {"key": "package_name", "value": package},
            {"key": "package_version", "value": "2.26-63.amzn2"},
        ],
    }


def enhanced(cve: str, fix: str, severity: str = "CRITICAL", package: str = "openssl") -> dict[str, Any]:
    """One finding of Inspector's enhanced scanning, as DescribeImageScanFindings returns it."""
    return {
        "findingArn": f"arn:aws:inspector2:us-west-2:111111111111:finding/{cve}",
        "severity": severity,
        "status": "ACTIVE",
        "title": f"{cve} - {package}",
        "fixAvailable": fix,
        "packageVulnerabilityDetails": {
            "vulnerabilityId": cve,
            "source": "NVD",
            "sourceUrl": f"https://nvd.nist.gov/vuln/detail/{cve}",
            "vulnerablePackages": [
                {
                    "name": package,
                    "version": "1.0.2k",
                    **({"fixedInVersion": "1.0.2zk"} if fix != "NO" else {}),
                }
            ],
        },
    }


def findings(image: image_scan.Image, raw: list[dict[str, Any]]) -> list[image_scan.Finding]:
    key = "enhancedFindings" if raw and "findingArn" in raw[0] else "findings"
    ecr = boto3.client("ecr", region_name="us-west-2")
    with Stubber(ecr) as stub:
        stub.add_response(
            "describe_image_scan_findings",
            {"imageScanFindings": {key: raw}},
            {"repositoryName": image.repository, "imageId": {"imageTag": image.tag}},
        )
        return image_scan.findings_of(ecr, image)


def judge(image: image_scan.Image, raw: list[dict[str, Any]], *entries: Allowed, **options: Any) -> Any:
    return image_scan.judge(
        image,
        findings(image, raw),
        fail_on="CRITICAL",
        allowlist=check(entries, today=TODAY),
        today=TODAY,
        unfixable_fails=options.get("unfixable_fails", False),
    )


def entry(finding: str = "CVE-2023-4911", days: int = 30, **fields: Any) -> Allowed:
    return Allowed(
        finding=finding,
        reason=fields.pop("reason", "No fixed glibc for Amazon Linux 2 yet; nothing setuid runs"),
        expires=TODAY + timedelta(days=days),
        **fields,
    )


# --- the allowlist ------------------------------------------------------------------------------------
def test_a_live_entry_lets_its_finding_through_and_says_until_when() -> None:
    allowed = entry(package="glibc", image="LogRouterImage")
    verdict = judge(LOG_ROUTER, [basic("CVE-2023-4911"), basic("CVE-2024-0001", "HIGH")], allowed)
    assert verdict.failing == 0
    assert verdict.used == {allowed}
    [line] = verdict.lines  # HIGH is below the gate: counted, not listed
    assert f"allowed until {TODAY + timedelta(days=30)}: No fixed glibc" in line
    assert "CVE-2023-4911 in glibc 2.26-63.amzn2" in line


def test_an_entry_covers_only_its_finding_package_and_image() -> None:
    other_cve = judge(LOG_ROUTER, [basic("CVE-2023-4911")], entry("CVE-2023-9999"))
    other_package = judge(LOG_ROUTER, [basic("CVE-2023-4911")], entry(package="openssl"))
    other_image = judge(LOG_ROUTER, [basic("CVE-2023-4911")], entry(image="Compressor"))
    assert (other_cve.failing, other_package.failing, other_image.failing) == (1, 1, 1)
    assert all(v.lines[0].startswith("FAILS    CRITICAL CVE-2023-4911") for v in (other_cve, other_image))
    # An image's name or a leading part of its construct path, for any of the names it serves under.
    assert judge(BACKEND, [basic("CVE-2023-4911")], entry(image="Web")).failing == 0
    assert judge(BACKEND, [basic("CVE-2023-4911")], entry(image="Web/TaskDef")).failing == 1
    assert judge(BACKEND, [basic("cve-2023-4911")], entry()).failing == 0  # ids compare case-blind


def test_an_expired_entry_covers_nothing_and_says_what_to_do() -> None:
    expired = entry(days=-1)
    verdict = judge(LOG_ROUTER, [basic("CVE-2023-4911")], expired)
    assert verdict.failing == 1
    assert verdict.used == {expired}  # it matched: not reported as unused
    text = "\n".join(verdict.lines)
    assert f"its allowlist entry expired on {TODAY - timedelta(days=1)}" in text
    assert "pipeline/image_scan_allowlist.py" in text and f"at most {MAX_DAYS_AHEAD} days ahead" in text
    # The last day itself is still covered.
    assert judge(LOG_ROUTER, [basic("CVE-2023-4911")], entry(days=0)).failing == 0


def test_an_entry_needs_an_id_a_reason_and_a_near_expiry() -> None:
    with pytest.raises(TypeError):
        Allowed(finding="CVE-2023-4911", expires=TODAY)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Allowed(finding="CVE-2023-4911", reason="No fix exists for this one yet")  # type: ignore[call-arg]
    for reason in ("", "   ", "tbd"):
        with pytest.raises(ValueError, match="needs a reason"):
            entry(reason=reason)
    with pytest.raises(ValueError, match=r"datetime\.date"):
        Allowed(finding="CVE-2023-4911", reason="No fix exists for this one yet", expires="2026-02-01")  # type: ignore[arg-type]
    for bad_id in ("", "glibc", "CVE 2023 4911"):
        with pytest.raises(ValueError, match="finding id"):
            entry(bad_id)
    with pytest.raises(ValueError, match="package is None or a non-empty name"):
        entry(package=" ")
    check((entry(days=MAX_DAYS_AHEAD),), today=TODAY)
    with pytest.raises(ValueError, match=f"more than {MAX_DAYS_AHEAD} days ahead"):
        check((entry(days=MAX_DAYS_AHEAD + 1),), today=TODAY)
    with pytest.raises(ValueError, match="listed twice"):
        check((entry(days=10), entry(days=20)), today=TODAY)


def test_the_shipped_allowlist_is_valid_today() -> None:
    module = importlib.reload(image_scan_allowlist)  # importing it checks it, as `make test` does
    assert all(isinstance(e, Allowed) for e in module.ALLOWLIST)
    assert check(module.ALLOWLIST, today=module.today_utc()) == module.ALLOWLIST
    assert isinstance(module.UNFIXABLE_FAILS, bool)


# --- enhanced scanning (Inspector) --------------------------------------------------------------------
def test_enhanced_findings_without_a_fix_are_listed_but_do_not_fail() -> None:
    raw = [
        enhanced("CVE-2024-1111", "NO"),
        enhanced("CVE-2024-2222", "YES"),
        enhanced("CVE-2024-3333", "NO", "HIGH"),
    ]
    verdict = judge(LOG_ROUTER, raw)
    assert verdict.failing == 1
    no_fix, fails = verdict.lines
    assert no_fix.startswith("no fix   CRITICAL CVE-2024-1111 in openssl 1.0.2k: no fixed version exists yet")
    assert fails.startswith("FAILS    CRITICAL CVE-2024-2222 in openssl 1.0.2k (fixed in 1.0.2zk)")
    assert judge(LOG_ROUTER, raw[:1] + raw[2:]).failing == 0
    # A partial fix is a fix; and the option makes every critical fail, as basic scanning must.
    assert judge(LOG_ROUTER, [enhanced("CVE-2024-4444", "PARTIAL")]).failing == 1
    assert judge(LOG_ROUTER, raw, unfixable_fails=True).failing == 2


def test_an_image_inspector_keeps_monitoring_is_scanned(capsys: pytest.CaptureFixture[str]) -> None:
    """Continuous enhanced scanning leaves an image ACTIVE (never COMPLETE): its findings are read at once."""
    ecr = boto3.client("ecr", region_name="us-west-2")
    ids = {"repositoryName": REPOSITORY, "imageIds": [{"imageTag": LOG_ROUTER.tag}]}
    with Stubber(ecr) as stub:
        stub.add_response(
            "describe_images", {"imageDetails": [{"imageScanStatus": {"status": "ACTIVE"}}]}, ids
        )
        stub.add_response(
            "describe_image_scan_findings",
            {
                "imageScanFindings": {
                    "enhancedFindings": [
                        enhanced("CVE-2024-1111", "NO"),
                        enhanced("CVE-2024-2222", "YES", "HIGH"),
                    ]
                }
            },
            {"repositoryName": REPOSITORY, "imageId": {"imageTag": LOG_ROUTER.tag}},
        )
        failure, used = image_scan.gate(
            ecr,
            LOG_ROUTER,
            fail_on="CRITICAL",
            timeout_s=60,
            allowlist=(),
            today=TODAY,
            unfixable_fails=False,
            sleep=never_sleeps,
        )
    assert failure is None and used == set()
    out = capsys.readouterr().out
    assert f"LogRouterImage ({'a' * 12}) in 111111111111/us-west-2: ACTIVE: critical 1, high 1" in out
    assert "no fix   CRITICAL CVE-2024-1111" in out


# --- basic scanning and images without a scan ---------------------------------------------------------
def test_an_unscanned_image_gets_a_scan_and_an_allowed_finding_passes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ecr = boto3.client("ecr", region_name="us-west-2")
    ids = {"repositoryName": REPOSITORY, "imageIds": [{"imageTag": LOG_ROUTER.tag}]}
    allowed = entry()
    with Stubber(ecr) as stub:
        stub.add_response("describe_images", {"imageDetails": [{"imageTags": [LOG_ROUTER.tag]}]}, ids)
        stub.add_response(
            "start_image_scan", {}, {"repositoryName": REPOSITORY, "imageId": {"imageTag": LOG_ROUTER.tag}}
        )
        stub.add_response(
            "describe_images", {"imageDetails": [{"imageScanStatus": {"status": "IN_PROGRESS"}}]}, ids
        )
        stub.add_response(
            "describe_images", {"imageDetails": [{"imageScanStatus": {"status": "COMPLETE"}}]}, ids
        )
        stub.add_response(
            "describe_image_scan_findings",
            {"imageScanFindings": {"findings": [basic("CVE-2023-4911"), basic("CVE-2024-0001", "LOW")]}},
            {"repositoryName": REPOSITORY, "imageId": {"imageTag": LOG_ROUTER.tag}},
        )
        failure, used = image_scan.gate(
            ecr,
            LOG_ROUTER,
            fail_on="CRITICAL",
            timeout_s=600,
            allowlist=(allowed,),
            today=TODAY,
            unfixable_fails=False,
            sleep=lambda _: None,
        )
        stub.assert_no_pending_responses()
    assert failure is None and used == {allowed}
    out = capsys.readouterr().out
    assert "COMPLETE: critical 1, low 1" in out
    assert f"allowed  CRITICAL CVE-2023-4911 in glibc 2.26-63.amzn2: allowed until {allowed.expires}" in out


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += 100


def test_an_image_the_registry_will_not_scan_fails_soon_and_says_what_to_set() -> None:
    """A registry whose (enhanced) rules leave the repository out refuses StartImageScan and never scans:
    the gate fails closed after a short grace, not after the whole timeout, naming `ecr_scanning`."""
    ecr = boto3.client("ecr", region_name="us-west-2")
    ids = {"repositoryName": REPOSITORY, "imageIds": [{"imageTag": LOG_ROUTER.tag}]}
    clock = Clock()
    with Stubber(ecr) as stub:
        stub.add_response("describe_images", {"imageDetails": [{"imageTags": [LOG_ROUTER.tag]}]}, ids)
        stub.add_client_error("start_image_scan", "ValidationException", "This feature is disabled")
        for _ in range(2):
            stub.add_response("describe_images", {"imageDetails": [{"imageTags": [LOG_ROUTER.tag]}]}, ids)
        status, description = image_scan.scan_result(
            ecr, LOG_ROUTER, timeout_s=900, clock=clock, sleep=clock.sleep
        )
        stub.assert_no_pending_responses()
    assert status == "NOT SCANNED"
    assert clock.now < 900
    assert "ValidationException" in description and "ecr_scanning" in description
    assert "stages/config.py" in description


def test_a_failed_or_unsupported_scan_fails_the_image(capsys: pytest.CaptureFixture[str]) -> None:
    ecr = boto3.client("ecr", region_name="us-west-2")
    ids = {"repositoryName": REPOSITORY, "imageIds": [{"imageTag": LOG_ROUTER.tag}]}
    status = {"status": "UNSUPPORTED_IMAGE", "description": "The operating system is not supported"}
    with Stubber(ecr) as stub:
        stub.add_response("describe_images", {"imageDetails": [{"imageScanStatus": status}]}, ids)
        failure, _ = image_scan.gate(
            ecr,
            LOG_ROUTER,
            fail_on="CRITICAL",
            timeout_s=60,
            allowlist=(),
            today=TODAY,
            unfixable_fails=False,
            sleep=never_sleeps,
        )
    assert failure == f"{LOG_ROUTER.label}: cannot scan (UNSUPPORTED_IMAGE)"
    out = capsys.readouterr().out
    assert "CANNOT SCAN: UNSUPPORTED_IMAGE: The operating system is not supported" in out
    assert "change its base image" in out


def test_images_carry_their_asset_names(tmp_path: Path) -> None:
    def asset(name: str, tag: str) -> dict[str, Any]:
        return {
            "displayName": name,
            "source": {"directory": f"asset.{tag}"},
            "destinations": {
                f"{account}-us-west-2": {
                    "repositoryName": f"cdk-hnb659fds-container-assets-{account}-us-west-2",
                    "imageTag": tag,
                    "region": "us-west-2",
                }
                for account in ("111111111111",)
            },
        }

    (tmp_path / "App.assets.json").write_text(
        json.dumps({"dockerImages": {"b": asset("Web/TaskDefinition/App/AssetImage", "b" * 64)}})
    )
    (tmp_path / "Migrations.assets.json").write_text(
        json.dumps({"dockerImages": {"b": asset("Migration/TaskDefinition/Migrate/AssetImage", "b" * 64)}})
    )
    assert image_scan.images_in(tmp_path) == [BACKEND]
    assert image_scan.images_in(tmp_path)[0].names == BACKEND.names
