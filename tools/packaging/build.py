#!/usr/bin/env python3
"""Build the Lambda artifacts Terraform deploys: chat.zip, qa.zip and the shared layer.zip.

    python -m tools.packaging [--build-dir build] [--force] [chat|qa|layer ...]

- chat.zip / qa.zip: the function's package plus functions/llm_app, each a folder at the zip
  root (handlers chat.handler.handler and qa.handler.handler), and `run.sh`, the streaming
  front door's start script (handler "run.sh" behind the Lambda Web Adapter), made from
  functions/run.sh with the function's package filled in; it is the zips' one executable.
- layer.zip: the pinned third-party dependencies (functions/requirements.txt) under python/,
  installed for the Lambda runtime (CPython 3.12, manylinux x86_64 wheels only), whatever
  machine builds them, and trimmed by LAYER_POLICY.

Every module ships compiled: unchecked hash-based .pyc files (PEP 552) next to the sources,
compiled by this interpreter, which must be the runtime's CPython 3.12, so Lambda's read-only
/var/task and /opt serve bytecode instead of compiling every import on each cold start.

The zips are reproducible: sorted entries, fixed timestamps (SOURCE_DATE_EPOCH, else
1980-01-01) and permissions, nothing machine- or path-specific (the bytecode names the Lambda
paths, /var/task and /opt/python, and is compiled with a fixed hash seed), so an unchanged
build keeps its sha256 and `terraform plan` shows no change. An artifact whose inputs (file
contents, pins, this script, the compiling interpreter's version) are unchanged is not rebuilt.
At the end the sizes are printed and checked against Lambda's limits; artifacts.json records
them once the check passes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tools.packaging import PackagingError, bytecode
from tools.packaging.bytecode import (
    LAMBDA_LAYER_PYTHON,
    LAMBDA_TASK_ROOT,
    PYTHON_VERSION,
    compile_tree,
    compiler_version,
)
from tools.paths import REPO_ROOT

try:
    import fcntl
except ImportError:  # Windows: builds into one folder are not serialised there.
    fcntl = None  # type: ignore[assignment]

REQUIREMENTS = REPO_ROOT / "functions" / "requirements.txt"
# The start script the Lambda Web Adapter runs (response_streaming = true): its template, the
# placeholder for the function's package, and its name at the zip root (the handler).
START_SCRIPT_TEMPLATE = REPO_ROOT / "functions" / "run.sh"
START_SCRIPT_PLACEHOLDER = "@FUNCTION@"
START_SCRIPT = "run.sh"

# Each function zip: packages that land, folder and all, at the zip root (Lambda's /var/task).
FUNCTION_SOURCES: Mapping[str, tuple[str, ...]] = {
    "chat": ("functions/chat", "functions/llm_app"),
    "qa": ("functions/qa", "functions/llm_app"),
}
LAYER = "layer"
ARTIFACTS = (*FUNCTION_SOURCES, LAYER)

# The Lambda runtime: python3.12 runs on Amazon Linux 2023 (glibc 2.34, x86_64 by default).
GLIBC_MINOR_MAX = 34
# Newest first, as pip prefers the first matching tag; the legacy aliases are listed because
# wheels are tagged with either spelling and pip (before 24) does not expand one to the other.
PLATFORM_TAGS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(GLIBC_MINOR_MAX, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)

# Lambda's quotas: 50 MiB per zip uploaded directly (as Terraform does), 250 MiB unzipped for a
# function and all its layers. https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MIB = 1024 * 1024
LAMBDA_MAX_ZIPPED_MIB = 50.0
LAMBDA_MAX_UNZIPPED_MIB = 250.0

# 1980-01-01, the earliest time a zip entry can carry.
ZIP_EPOCH = 315_532_800
# Read-only for everyone: Lambda only reads the files (shared objects are mapped, not executed),
# and ignoring the build machine's modes keeps Windows and umask out of the hash.
FILE_MODE = 0o644
# The start script alone is executed (by the adapter's /opt/bootstrap).
EXECUTABLE_MODE = 0o755
# Bumped when the layout of the artifacts changes in a way the inputs digest cannot see.
FORMAT_VERSION = "3"


@dataclass(frozen=True)
class LayerPolicy:
    """What the layer leaves out of the pinned dependencies, and why (see README, Packaging)."""

    # Distributions not installed at all: name -> why that is safe.
    excluded_distributions: Mapping[str, str] = field(default_factory=dict)
    # botocore service models kept (None keeps all 400+). The top-level data files (endpoints,
    # partitions, retry and default configuration) are always kept: every client needs them.
    botocore_services: frozenset[str] | None = None
    # Drop files the runtime never loads: tests, type stubs, C sources, botocore's doc examples.
    drop_unused_files: bool = True


LAYER_POLICY = LayerPolicy(
    excluded_distributions={
        # langchain-aws imports numpy only in its embeddings and vector stores, never on the
        # SageMaker chat-model path; 14.9 MiB zipped.
        "numpy": "imported only by langchain-aws embeddings/vector stores, which we do not use",
        # langsmith imports it in a try/except and compresses traces with it only when tracing
        # to LangSmith is on (it then falls back to uncompressed uploads); 5.3 MiB zipped.
        "zstandard": "optional for langsmith (trace compression), which falls back without it",
    },
    # The services the functions call; a test checks the function code names no other.
    botocore_services=frozenset({"sagemaker-runtime", "dynamodb", "s3"}),
)

# Files dropped by `drop_unused_files`: never imported or read at run time.
_UNUSED_DIR_NAMES = frozenset({"__pycache__", "tests"})
_UNUSED_SUFFIXES = (".pyi", ".pyc", ".c", ".h", ".pyx", ".pxd")
_UNUSED_FILE_NAMES = frozenset({"py.typed", "examples-1.json"})
# pip's install records: they name the installer, how a package was requested and each file's
# hash, vary with how and where pip ran, and nothing reads them at run time.
_INSTALL_RECORD_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def _is_packaged(relative: Path) -> bool:
    """Source files that belong in a zip: no caches, bytecode or dotfiles (editor/OS litter)."""
    if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
        return False
    return relative.suffix not in {".pyc", ".pyo"}


def function_sources(name: str, repo_root: Path = REPO_ROOT) -> list[tuple[str, Path]]:
    """(name in the zip, file) for every file of function `name`, sorted by name in the zip."""
    entries: dict[str, Path] = {}
    for folder in FUNCTION_SOURCES[name]:
        base = repo_root / folder
        if not base.is_dir():
            raise PackagingError(f"{folder}/ is missing: cannot package function '{name}'.")
        for path in base.rglob("*"):
            relative = path.relative_to(base)
            if not path.is_file() or not _is_packaged(relative):
                continue
            arcname = f"{base.name}/{relative.as_posix()}"
            if arcname in entries:
                raise PackagingError(
                    f"{folder}/{arcname} and {entries[arcname]} would both be '{arcname}' "
                    f"at the root of {name}.zip: rename one."
                )
            entries[arcname] = path
    return sorted(entries.items())


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _inputs_digest(name: str, repo_root: Path, epoch: int) -> str:
    """Digest of everything the artifact's bytes depend on; equal digests mean equal zips."""
    digest = hashlib.sha256()
    packager = (Path(__file__), Path(bytecode.__file__))  # how the bytes are made
    parts = (
        FORMAT_VERSION,
        str(epoch),
        compiler_version(),
        *(p.read_text("utf-8") for p in packager),
    )
    for part in parts:
        digest.update(part.encode() + b"\0")
    if name == LAYER:
        digest.update(REQUIREMENTS.read_bytes())
    else:
        digest.update(start_script(name).encode() + b"\0")
        for arcname, path in function_sources(name, repo_root):
            digest.update(f"{arcname}\0{_sha256_file(path)}\0".encode())
    return digest.hexdigest()


def source_date_epoch() -> int:
    """SOURCE_DATE_EPOCH (reproducible-builds.org) if set, else 1980-01-01 (zip's earliest)."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_EPOCH
    try:
        return max(int(raw), ZIP_EPOCH)
    except ValueError:
        raise PackagingError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer.") from None


def start_script(name: str) -> str:
    """Function `name`'s run.sh: the template with the function's package filled in."""
    template = START_SCRIPT_TEMPLATE.read_text(encoding="utf-8")
    if START_SCRIPT_PLACEHOLDER not in template:
        raise PackagingError(f"{START_SCRIPT_TEMPLATE} has no {START_SCRIPT_PLACEHOLDER}.")
    return template.replace(START_SCRIPT_PLACEHOLDER, name)


# ---------------------------------------------------------------------------------------------
# Reproducible zips
# ---------------------------------------------------------------------------------------------
def write_reproducible_zip(
    dest: Path,
    entries: Iterable[tuple[str, Path]],
    epoch: int,
    executables: frozenset[str] = frozenset(),
) -> None:
    """Write `entries` (name in zip, file) so the bytes depend only on names and contents;
    the `executables` (names in zip) get mode 0755, everything else 0644."""
    date_time = time.gmtime(epoch)[:6]
    tmp = dest.with_name(dest.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for arcname, path in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=date_time)
            info.create_system = 3  # Unix, whatever builds it, so the modes below are honoured.
            mode = EXECUTABLE_MODE if arcname in executables else FILE_MODE
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    os.replace(tmp, dest)  # Never a half-written zip with a fresh mtime.


def _tree_entries(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    for path in root.rglob("*"):
        if path.is_file():
            yield f"{prefix}{path.relative_to(root).as_posix()}", path


@dataclass(frozen=True)
class ZipStats:
    zipped: int
    unzipped: int
    files: int


def zip_stats(path: Path) -> ZipStats:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    return ZipStats(path.stat().st_size, sum(info.file_size for info in infos), len(infos))


# ---------------------------------------------------------------------------------------------
# The dependency layer
# ---------------------------------------------------------------------------------------------
_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==")


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: PyYAML, pyyaml and py_yaml are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_requirements(text: str) -> list[tuple[str, str]]:
    """(canonical name, full requirement with its hashes) for each pin of a lock file."""
    logical = re.sub(r"\\\n", " ", text)
    pins = []
    for line in logical.splitlines():
        requirement = line.split(" #", 1)[0].strip()
        if not requirement or requirement.startswith("#"):
            continue
        match = _REQUIREMENT_NAME.match(requirement)
        if not match or "--hash=" not in requirement:
            raise PackagingError(
                f"{REQUIREMENTS.relative_to(REPO_ROOT)}: '{requirement[:60]}' is not a pin with "
                "hashes; regenerate the file with `make lock`."
            )
        pins.append((canonical_name(match.group(1)), requirement))
    return pins


def install_dependencies(target: Path, policy: LayerPolicy, requirements: Path) -> None:
    """pip-install the pinned wheels for the Lambda runtime into `target`, hash-checked."""
    pins = pinned_requirements(requirements.read_text(encoding="utf-8"))
    pinned = {name for name, _ in pins}
    stale = sorted(set(map(canonical_name, policy.excluded_distributions)) - pinned)
    if stale:
        raise PackagingError(
            f"The layer policy excludes {', '.join(stale)}, which the pins no longer contain: "
            "update LAYER_POLICY in tools/packaging/build.py."
        )
    excluded = {canonical_name(name) for name in policy.excluded_distributions}
    kept = [requirement for name, requirement in pins if name not in excluded]
    target.mkdir(parents=True)
    selection = target.parent / "requirements.selected.txt"
    selection.write_text("\n".join(kept) + "\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-input",
        # The lock is the complete, resolved closure: install exactly it, nothing resolved anew.
        "--no-deps", "--require-hashes",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION,
        *(arg for tag in PLATFORM_TAGS for arg in ("--platform", tag)),
        "--no-compile", "--target", str(target), "-r", str(selection),
    ]  # fmt: skip
    left_out = ", ".join(sorted(excluded)) or "none"
    print(
        f"layer: pip installing {len(kept)} pinned distributions for CPython {PYTHON_VERSION} "
        f"manylinux x86_64 (left out by LAYER_POLICY: {left_out})",
        flush=True,
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(
            "pip could not install the pinned dependencies for the Lambda runtime:\n"
            f"{result.stdout}{result.stderr}\n"
            "If a pin has no manylinux x86_64 wheel for CPython 3.12, or its hashes are stale, "
            "regenerate functions/requirements.txt with `make lock`."
        )


def _unused_files(site: Path) -> Iterator[Path]:
    """Tests, type stubs, C sources and botocore's documentation examples under `site`."""
    for path in site.rglob("*"):
        relative = path.relative_to(site)
        if relative.parts[0].endswith(".dist-info"):
            continue  # Licences and metadata stay.
        if path.is_dir():
            stub_package = len(relative.parts) == 1 and path.name.endswith("-stubs")
            if path.name in _UNUSED_DIR_NAMES or stub_package:
                yield path
        elif path.suffix in _UNUSED_SUFFIXES or path.name in _UNUSED_FILE_NAMES:
            yield path


def _unused_botocore_models(site: Path, services: frozenset[str]) -> list[Path]:
    data = site / "botocore" / "data"
    present = {path.name for path in data.iterdir() if path.is_dir()}
    missing = services - present
    if missing:
        raise PackagingError(f"botocore has no model for {sorted(missing)}: check the names.")
    return [data / name for name in sorted(present - services)]


def prune_layer(site: Path, policy: LayerPolicy) -> int:
    """Remove what the runtime never loads; returns the bytes removed."""
    # Console scripts (their shebang is the build interpreter's path; Lambda runs none), pip's
    # install records, and any bytecode a wheel carries (compile_tree writes the shipped one).
    doomed = [site / "bin", *site.rglob("__pycache__")]
    doomed += [path for path in site.glob("*.dist-info/*") if path.name in _INSTALL_RECORD_FILES]
    if policy.botocore_services is not None:
        doomed += _unused_botocore_models(site, policy.botocore_services)
    if policy.drop_unused_files:
        doomed += _unused_files(site)
    removed = 0
    for path in doomed:
        if path.is_dir():
            removed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
        elif path.exists():  # Not already gone with a folder listed before it.
            removed += path.stat().st_size
            path.unlink()
    return removed


def build_layer(
    dest: Path,
    work_dir: Path,
    epoch: int,
    policy: LayerPolicy = LAYER_POLICY,
    requirements: Path = REQUIREMENTS,
    *,
    bytecode: bool = True,
) -> int:
    """Build layer.zip at `dest` (dependencies under python/, compiled unless `bytecode` is
    False, which only the benchmark's what-if asks for); returns the bytes pruned."""
    staging = work_dir / "layer-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        install_dependencies(staging / "python", policy, requirements)
        pruned = prune_layer(staging / "python", policy)
        if bytecode:
            compile_tree(staging / "python", LAMBDA_LAYER_PYTHON)
        write_reproducible_zip(dest, _tree_entries(staging / "python", "python/"), epoch)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pruned


def build_function(
    name: str, dest: Path, work_dir: Path, epoch: int, repo_root: Path = REPO_ROOT
) -> None:
    """Build <name>.zip at `dest`: the function's sources and their bytecode."""
    staging = work_dir / f"{name}-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for arcname, path in function_sources(name, repo_root):
            target = staging / arcname
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (staging / START_SCRIPT).write_text(start_script(name), encoding="utf-8", newline="\n")
        compile_tree(staging, LAMBDA_TASK_ROOT)
        write_reproducible_zip(
            dest, _tree_entries(staging, ""), epoch, executables=frozenset({START_SCRIPT})
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Incremental builds
# ---------------------------------------------------------------------------------------------
def build_artifact(
    name: str, build_dir: Path, *, force: bool = False, dry_run: bool = False
) -> bool:
    """Build one artifact unless its inputs are unchanged; returns whether it was (or, with
    `dry_run`, would be) rebuilt.

    The inputs' digest (file names and contents, the pins, this file, SOURCE_DATE_EPOCH) is
    the only staleness test: a touched but unchanged file costs a digest, an added or deleted
    file changes it.
    """
    state_dir = build_dir / ".state"
    state_dir.mkdir(parents=True, exist_ok=True)
    dest = build_dir / f"{name}.zip"
    state_file = state_dir / f"{name}.json"
    epoch = source_date_epoch()
    inputs = _inputs_digest(name, REPO_ROOT, epoch)
    if not force and dest.exists() and state_file.exists():
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if state.get("inputs") == inputs and state.get("sha256") == _sha256_file(dest):
            return False
    if dry_run:
        print(f"would build {dest}", flush=True)
        return True

    started = time.perf_counter()
    if name == LAYER:
        pruned = build_layer(dest, state_dir, epoch)
        detail = f", {pruned / MIB:.1f} MiB pruned"
    else:
        build_function(name, dest, state_dir, epoch)
        detail = ""
    state_file.write_text(
        json.dumps({"inputs": inputs, "sha256": _sha256_file(dest)}, indent=2) + "\n",
        encoding="utf-8",
    )
    print(f"built {dest} in {time.perf_counter() - started:.1f}s{detail}", flush=True)
    return True


# ---------------------------------------------------------------------------------------------
# Lambda's limits
# ---------------------------------------------------------------------------------------------
def check_limits(
    stats: Mapping[str, ZipStats], max_zipped_mib: float, max_unzipped_mib: float
) -> list[str]:
    """Violations of Lambda's size quotas, one message each; empty when all artifacts fit."""
    problems = []
    for name, sizes in stats.items():
        if sizes.zipped > max_zipped_mib * MIB:
            problems.append(
                f"{name}.zip is {sizes.zipped / MIB:.1f} MiB zipped, over the "
                f"{max_zipped_mib:g} MiB Lambda accepts in a direct upload."
            )
    for name in FUNCTION_SOURCES:
        total = stats[name].unzipped + stats[LAYER].unzipped
        if total > max_unzipped_mib * MIB:
            problems.append(
                f"{name}.zip plus layer.zip unzip to {total / MIB:.1f} MiB, over the "
                f"{max_unzipped_mib:g} MiB Lambda allows for a function and its layers."
            )
    return problems


def report(
    build_dir: Path, max_zipped_mib: float, max_unzipped_mib: float, *, quiet: bool = False
) -> None:
    """Check the sizes against Lambda's limits; print them unless `quiet` (nothing changed)."""
    missing = [name for name in ARTIFACTS if not (build_dir / f"{name}.zip").exists()]
    if missing:
        raise PackagingError(f"{', '.join(missing)} not built yet in {build_dir}.")
    stats = {name: zip_stats(build_dir / f"{name}.zip") for name in ARTIFACTS}
    problems = check_limits(stats, max_zipped_mib, max_unzipped_mib)
    if not quiet or problems:
        print(f"\n{'artifact':<11}{'zipped':>12}{'unzipped':>12}{'files':>8}")
        for name, sizes in stats.items():
            print(
                f"{name + '.zip':<11}{sizes.zipped / MIB:>8.2f} MiB"
                f"{sizes.unzipped / MIB:>8.2f} MiB{sizes.files:>8}"
            )
        print(
            f"limits: {max_zipped_mib:g} MiB per zip (direct upload), "
            f"{max_unzipped_mib:g} MiB unzipped per function with its layer"
        )
    summary = build_dir / "artifacts.json"
    if problems:
        summary.unlink(missing_ok=True)  # A failed check must not look done.
        raise PackagingError(
            "The artifacts exceed Lambda's limits:\n  "
            + "\n  ".join(problems)
            + "\nTrim the layer (LAYER_POLICY in tools/packaging/build.py) or drop a dependency."
        )
    summary.write_text(
        json.dumps(
            {
                name: {
                    "path": f"{name}.zip",
                    # The bytecode's interpreter; Lambda's python3.12 runs any 3.12.x's.
                    "compiled_by": compiler_version(),
                    "sha256": _sha256_file(build_dir / f"{name}.zip"),
                    "zipped_bytes": sizes.zipped,
                    "unzipped_bytes": sizes.unzipped,
                    "files": sizes.files,
                }
                for name, sizes in stats.items()
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "artifacts",
        nargs="*",
        metavar="ARTIFACT",
        help=f"what to build, of {', '.join(ARTIFACTS)} (default: all)",
    )
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build")
    parser.add_argument("--force", action="store_true", help="rebuild even if inputs are unchanged")
    parser.add_argument(
        "--dry-run", action="store_true", help="only say what would be rebuilt (like make -n)"
    )
    parser.add_argument("--max-zipped-mib", type=float, default=LAMBDA_MAX_ZIPPED_MIB)
    parser.add_argument("--max-unzipped-mib", type=float, default=LAMBDA_MAX_UNZIPPED_MIB)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.artifacts) - set(ARTIFACTS))
    if unknown:
        parser.error(f"unknown artifact {', '.join(unknown)}; choose from {', '.join(ARTIFACTS)}")
    return args


@contextmanager
def exclusive(build_dir: Path) -> Iterator[None]:
    """One packager at a time per build folder (`make -j`, parallel test workers)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    build_dir = args.build_dir.resolve()
    try:
        with exclusive(build_dir):
            names = args.artifacts or ARTIFACTS
            rebuilt = [
                build_artifact(name, build_dir, force=args.force, dry_run=args.dry_run)
                for name in names
            ]
            if not args.dry_run:
                unchanged = not any(rebuilt) and (build_dir / "artifacts.json").exists()
                report(build_dir, args.max_zipped_mib, args.max_unzipped_mib, quiet=unchanged)
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
