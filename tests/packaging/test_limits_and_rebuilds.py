"""The build refuses artifacts Lambda would refuse, and rebuilds only what changed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import missing_tool
from tools.packaging import build as package
from tools.paths import REPO_ROOT

pytestmark = pytest.mark.packaging

MIB = package.MIB


def stats(zipped_mib: float, unzipped_mib: float) -> package.ZipStats:
    return package.ZipStats(int(zipped_mib * MIB), int(unzipped_mib * MIB), 1)


def test_check_limits_passes_artifacts_within_lambdas_quotas() -> None:
    sizes = {"chat": stats(0.1, 0.2), "qa": stats(0.1, 0.2), "layer": stats(49, 249)}
    assert package.check_limits(sizes, 50, 250) == []


def test_check_limits_names_each_zip_over_the_direct_upload_limit() -> None:
    sizes = {"chat": stats(0.1, 0.2), "qa": stats(0.1, 0.2), "layer": stats(51, 100)}
    assert package.check_limits(sizes, 50, 250) == [
        "layer.zip is 51.0 MiB zipped, over the 50 MiB Lambda accepts in a direct upload."
    ]


def test_check_limits_adds_each_function_to_its_layer_unzipped() -> None:
    sizes = {"chat": stats(0.1, 2.0), "qa": stats(0.1, 0.5), "layer": stats(10, 249)}
    assert package.check_limits(sizes, 50, 250) == [
        "chat.zip plus layer.zip unzip to 251.0 MiB, over the 250 MiB Lambda allows for a "
        "function and its layers."
    ]


@pytest.fixture
def build_copy(built_artifacts: Path, tmp_path: Path) -> Path:
    """The session's build, copied with its mtimes, so a test may break or rebuild it."""
    copy = tmp_path / "build"
    shutil.copytree(built_artifacts, copy)
    return copy


def package_cli(build_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.packaging", "--build-dir", str(build_dir), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (["--max-zipped-mib", "1"], "layer.zip is .* MiB zipped, over the 1 MiB"),
        (["--max-unzipped-mib", "5"], "chat.zip plus layer.zip unzip to .* MiB, over the 5 MiB"),
    ],
)
def test_the_build_fails_with_a_clear_message_over_a_limit(
    build_copy: Path, limit: list[str], message: str
) -> None:
    result = package_cli(build_copy, *limit)

    assert result.returncode == 1
    assert "exceed Lambda's limits" in result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert not (build_copy / "artifacts.json").exists(), "a failed check must not look done to make"


def test_an_unchanged_build_is_not_redone(build_copy: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in build_copy.glob("*.zip")}

    result = package_cli(build_copy)

    assert result.returncode == 0, result.stderr
    assert "built" not in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in build_copy.glob("*.zip")} == before


def make_plan(build_dir: Path, *args: str) -> str:
    """The commands `make package` would run (-n), with `args` (e.g. -W file: as if changed)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "package", f"BUILD_DIR={build_dir}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return "\n".join(line for line in result.stdout.splitlines() if "tools.packaging" in line)


def rebuilt(plan: str) -> set[str]:
    return {name for name in package.ARTIFACTS if f"--no-check {name}" in plan}


@pytest.fixture(scope="module")
def make_build(built_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's build for make to plan against (-n, -q: nothing is run)."""
    if shutil.which("make") is None:
        missing_tool("GNU make is not installed")
    # `package` waits for the dev environment (order-only), so a stale one would be "work".
    venv = subprocess.run(["make", "-q", ".venv/.installed"], cwd=REPO_ROOT, check=False)
    if venv.returncode != 0:
        pytest.skip("the dev environment is older than the pins: run `make venv` first")
    copy = tmp_path_factory.mktemp("make") / "build"
    shutil.copytree(built_artifacts, copy)
    return copy


def test_make_package_with_nothing_changed_does_nothing(make_build: Path) -> None:
    result = subprocess.run(
        ["make", "-q", "package", f"BUILD_DIR={make_build}"], cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, "make -q: `make package` would run something"
    assert make_plan(make_build) == ""


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ("functions/qa/handler.py", {"qa"}),
        ("functions/chat/handler.py", {"chat"}),
        ("functions/llm_app/config.py", {"chat", "qa"}),
        ("functions/requirements.txt", {"layer"}),
        ("tools/packaging/build.py", {"chat", "qa", "layer"}),
    ],
)
def test_make_package_rebuilds_only_what_a_change_touches(
    make_build: Path, changed: str, expected: set[str]
) -> None:
    plan = make_plan(make_build, "-W", changed)
    assert rebuilt(plan) == expected
    assert "--check-only" in plan


def test_a_source_added_or_deleted_rebuilds_its_zip(make_build: Path, build_copy: Path) -> None:
    """A deleted module leaves no newer file behind; the recorded source list catches it."""
    recorded = build_copy / ".state" / "qa.sources"
    recorded.write_text(recorded.read_text() + "functions/qa/deleted_module.py\n")

    assert rebuilt(make_plan(build_copy)) == {"qa"}
