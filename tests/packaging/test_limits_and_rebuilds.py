"""The build refuses artifacts Lambda would refuse, and rebuilds only what changed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import run_tool
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
    return run_tool("tools.packaging", "--build-dir", str(build_dir), *args)


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


@pytest.fixture(scope="module")
def checkout(built_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sources with the session's build: the packager's inputs, free to edit."""
    root = tmp_path_factory.mktemp("checkout")
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("functions", "tools", "scripts"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=ignore)
    shutil.copytree(built_artifacts, root / "build")
    return root


def planned(checkout: Path) -> set[str]:
    """What the packager would rebuild in `checkout` (--dry-run: nothing is built)."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.packaging", "--dry-run"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        name
        for name in package.ARTIFACTS
        if f"would build {checkout}/build/{name}.zip" in result.stdout
    }


def test_with_nothing_changed_nothing_is_planned(checkout: Path) -> None:
    assert planned(checkout) == set()


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
def test_a_change_rebuilds_only_what_it_touches(
    checkout: Path, changed: str, expected: set[str]
) -> None:
    path = checkout / changed
    original = path.read_text()
    try:
        path.write_text(original + "\n# changed\n")
        assert planned(checkout) == expected
    finally:
        path.write_text(original)


def test_a_touched_but_unchanged_source_rebuilds_nothing(checkout: Path) -> None:
    (checkout / "functions" / "chat" / "handler.py").touch()
    assert planned(checkout) == set()


def test_a_source_added_or_deleted_rebuilds_its_zip(checkout: Path) -> None:
    added = checkout / "functions" / "qa" / "added_module.py"
    added.write_text("VALUE = 1\n")
    try:
        assert planned(checkout) == {"qa"}
    finally:
        added.unlink()
    assert planned(checkout) == set()
