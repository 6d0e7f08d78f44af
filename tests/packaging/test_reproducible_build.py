"""Same sources, pins and interpreter version, any checkout path, any mtimes: byte-identical
zips, bytecode included, so Terraform's filebase64sha256 stays put and an unchanged build plans
no change."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tools.packaging import PackagingError, bytecode
from tools.packaging import build as package
from tools.paths import REPO_ROOT

pytestmark = pytest.mark.packaging


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_build_from_another_checkout_with_touched_sources_is_byte_identical(
    built_artifacts: Path, tmp_path: Path
) -> None:
    checkout = tmp_path / "elsewhere" / "checkout"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "functions", checkout / "functions", ignore=ignore)
    shutil.copytree(REPO_ROOT / "tools", checkout / "tools", ignore=ignore)
    later = time.time() + 3600
    for path in checkout.rglob("*"):
        os.utime(path, (later, later))
    env = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}

    subprocess.run(
        [sys.executable, "-m", "tools.packaging", "--build-dir", str(tmp_path / "out")],
        cwd=checkout,
        env=env,
        check=True,
        # A different umask: the zips' modes must not follow the build machine's.
        preexec_fn=lambda: os.umask(0o077),
    )

    rebuilt = {name: sha256(tmp_path / "out" / f"{name}.zip") for name in package.ARTIFACTS}
    assert rebuilt == {name: sha256(built_artifacts / f"{name}.zip") for name in package.ARTIFACTS}


@pytest.mark.parametrize("name", package.ARTIFACTS)
def test_zip_entries_carry_nothing_machine_specific(built_artifacts: Path, name: str) -> None:
    with zipfile.ZipFile(built_artifacts / f"{name}.zip") as archive:
        infos = archive.infolist()
        contents = b"".join(archive.read(info) for info in infos)
    names = [info.filename for info in infos]

    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {info.filename: (info.external_attr >> 16) & 0o7777 for info in infos}
    # Only the start script is executable; its bit is set whatever the checkout's modes.
    executables = {"run.sh"} if name in package.FUNCTION_SOURCES else set()
    assert {n for n, mode in modes.items() if mode == 0o755} == executables
    assert set(modes.values()) <= {0o644, 0o755}
    assert {info.create_system for info in infos} == {3}
    assert not [n for n in names if n.endswith(".pyo")]
    assert not [n for n in names if n.startswith("python/bin/")]
    install_records = ("/RECORD", "/INSTALLER", "/REQUESTED", "/direct_url.json")
    assert not [n for n in names if ".dist-info/" in n and n.endswith(install_records)]
    assert str(REPO_ROOT).encode() not in contents
    assert str(built_artifacts).encode() not in contents


def cache_name(source: str) -> str:
    """Where CPython 3.12 looks for the bytecode of `source` (PEP 3147)."""
    folder, _, file = source.rpartition("/")
    return f"{folder}/__pycache__/{file.removesuffix('.py')}.cpython-312.pyc".lstrip("/")


@pytest.mark.parametrize("name", package.ARTIFACTS)
def test_every_module_ships_unchecked_hash_based_bytecode_of_the_runtime(
    built_artifacts: Path, name: str
) -> None:
    with zipfile.ZipFile(built_artifacts / f"{name}.zip") as archive:
        names = set(archive.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        missing = [s for s in sources if cache_name(s) not in names]
        headers = {archive.read(cache_name(s))[:8] for s in sources if cache_name(s) in names}
        orphans = [n for n in names if n.endswith(".pyc") and "/__pycache__/" not in f"/{n}"]

    assert sources
    assert missing == []
    assert orphans == []  # no sourceless .pyc: tracebacks keep their source lines
    # PEP 552 header: the 3.12 magic number, then flags 0b01 (hash-based, source not checked).
    magic = importlib.util.MAGIC_NUMBER
    assert headers == {magic + (1).to_bytes(4, "little")}


@pytest.mark.parametrize("name", package.ARTIFACTS)
def test_the_bytecode_names_the_files_where_lambda_puts_them(
    built_artifacts: Path, name: str
) -> None:
    import marshal

    where = "/var/task/" if name in package.FUNCTION_SOURCES else "/opt/"
    with zipfile.ZipFile(built_artifacts / f"{name}.zip") as archive:
        pyc = sorted(n for n in archive.namelist() if n.endswith(".pyc"))[0]
        code = marshal.loads(archive.read(pyc)[16:])

    source = pyc.replace("__pycache__/", "").replace(".cpython-312.pyc", ".py")
    assert code.co_filename == where + source


def test_the_compiling_interpreter_is_recorded_and_part_of_the_inputs(
    built_artifacts: Path, monkeypatch
) -> None:
    recorded = json.loads((built_artifacts / "artifacts.json").read_text())
    assert {entry["compiled_by"] for entry in recorded.values()} == {package.compiler_version()}
    assert package.compiler_version().startswith("CPython 3.12.")

    before = package._inputs_digest("layer", REPO_ROOT, package.ZIP_EPOCH)
    monkeypatch.setattr(package, "compiler_version", lambda: "CPython 3.12.99")
    assert package._inputs_digest("layer", REPO_ROOT, package.ZIP_EPOCH) != before


def test_another_python_than_the_runtimes_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(bytecode, "PYTHON_VERSION", "3.11")
    with pytest.raises(PackagingError, match=r"must be compiled by CPython 3\.11"):
        bytecode.check_compiler()


def test_function_zips_hold_the_function_and_the_shared_package_at_their_root(
    built_artifacts: Path,
) -> None:
    for name in ("chat", "qa"):
        with zipfile.ZipFile(built_artifacts / f"{name}.zip") as archive:
            names = set(archive.namelist())
        expected = {f"{name}/{p.name}" for p in (REPO_ROOT / "functions" / name).glob("*.py")}
        expected |= {cache_name(source) for source in expected}
        assert f"{name}/handler.py" in names
        assert expected <= names
        assert "llm_app/__init__.py" in names
        # Nothing else on sys.path; the start script beside the packages.
        assert {n.split("/")[0] for n in names} == {name, "llm_app", "run.sh"}


@pytest.mark.parametrize("name", ["chat", "qa"])
def test_the_start_script_runs_the_functions_asgi_app_on_loopback(
    built_artifacts: Path, name: str
) -> None:
    with zipfile.ZipFile(built_artifacts / f"{name}.zip") as archive:
        script = archive.read("run.sh").decode()
    assert script.startswith("#!/bin/sh\n")
    assert "@FUNCTION@" not in script
    # Unbuffered (-u): each request's EMF lines reach the log as it ends.
    assert f"exec python3 -u -X faulthandler -m llm_app.http.server {name}.handler" in script
    assert 'port="${AWS_LWA_PORT:-${PORT:-8080}}"' in script
    assert '--host 127.0.0.1 --port "$port"' in script
    assert 'PYTHONPATH="/opt/python:${task_root}' in script


def test_source_date_epoch_sets_the_entries_time(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "module.py"
    source.write_text("VALUE = 1\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC

    epoch = package.source_date_epoch()
    package.write_reproducible_zip(tmp_path / "out.zip", [("module.py", source)], epoch)

    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert archive.getinfo("module.py").date_time == (2023, 11, 14, 22, 13, 20)


def test_source_date_epoch_before_1980_is_clamped(monkeypatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert package.source_date_epoch() == package.ZIP_EPOCH


def test_a_pin_without_hashes_is_refused() -> None:
    with pytest.raises(package.PackagingError, match="make lock"):
        package.pinned_requirements("boto3==1.44.8\n")


def test_the_lock_pins_every_direct_requirement_with_hashes() -> None:
    pins = dict(package.pinned_requirements(package.REQUIREMENTS.read_text()))
    direct = [
        package.canonical_name(line.split("#")[0].strip())
        for line in (REPO_ROOT / "functions" / "requirements.in").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert direct, "requirements.in lists nothing"
    assert set(direct) <= set(pins), "run `make lock` after editing functions/requirements.in"
    dev = (REPO_ROOT / "requirements" / "dev.txt").read_text().splitlines()
    assert "-r ../functions/requirements.txt" in dev, "the dev tools must test the shipped pins"
