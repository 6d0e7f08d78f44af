"""Run the Terraform CLI from Python: provider mirror, plugin cache, staged copies, a small runner.

Offline machines name a filesystem mirror of the providers in ``TF_PROVIDER_MIRROR`` (a folder
laid out as ``registry.terraform.io/hashicorp/aws/<version>/<os_arch>/``); ``terraform_env``
then writes a CLI config that installs ``hashicorp/*`` from it. Without the variable the public
registry is used, as on any user's machine. Either way providers land once in a shared plugin
cache, so each further ``init`` links instead of copying (~1 s instead of ~3 s and 675 MB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.paths import REPO_ROOT

DEFAULT_PLUGIN_CACHE = REPO_ROOT / "build" / ".terraform-plugin-cache"
MIRROR_ENV = "TF_PROVIDER_MIRROR"

# What a Terraform configuration is made of (*.json: *.tf.json and the data files a module
# reads with file(), such as sagemaker-tgi's images.json); everything else (state, .terraform,
# lock files, build outputs) stays behind when a tree is staged.
_TERRAFORM_SOURCES = ("*.tf", "*.json", "*.tftpl", "*.tfvars.example")
_REGISTRY_FAILURES = (
    "Failed to query available provider packages",
    "could not connect to registry.terraform.io",
    "Failed to install provider",
)


def cli_config(mirror: Path | None, plugin_cache_dir: Path) -> str:
    """Text of a Terraform CLI config: the plugin cache, and the mirror for hashicorp/* if given."""
    lines = [f"plugin_cache_dir = {json.dumps(str(plugin_cache_dir))}"]
    if mirror is not None:
        lines += [
            "provider_installation {",
            "  filesystem_mirror {",
            f"    path    = {json.dumps(str(mirror))}",
            '    include = ["registry.terraform.io/hashicorp/*"]',
            "  }",
            "  direct {",
            '    exclude = ["registry.terraform.io/hashicorp/*"]',
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def terraform_env(
    work_dir: Path,
    *,
    mirror: Path | str | None = None,
    plugin_cache_dir: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A complete environment for running ``terraform`` non-interactively.

    ``work_dir`` is a scratch folder that receives ``terraform.rc`` (never the repository root
    or ``~``). ``mirror`` defaults to ``$TF_PROVIDER_MIRROR``; ``plugin_cache_dir`` to
    ``$TF_PLUGIN_CACHE_DIR`` or ``build/.terraform-plugin-cache``.
    """
    env = dict(os.environ if base is None else base)
    mirror = mirror if mirror is not None else env.get(MIRROR_ENV) or None
    cache = plugin_cache_dir or Path(env.get("TF_PLUGIN_CACHE_DIR") or DEFAULT_PLUGIN_CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    env.pop("TF_PLUGIN_CACHE_DIR", None)  # the CLI config below carries it
    if mirror is not None:
        mirror_path = Path(mirror).resolve()
        if not mirror_path.is_dir():
            raise FileNotFoundError(f"{MIRROR_ENV}={mirror} is not a folder")
        work_dir.mkdir(parents=True, exist_ok=True)
        config = work_dir / "terraform.rc"
        config.write_text(cli_config(mirror_path, cache.resolve()), encoding="utf-8")
        env["TF_CLI_CONFIG_FILE"] = str(config)
    else:
        # Keep the user's own CLI config (registry credentials, network mirrors); only drop a
        # pointer to a file that does not exist, which merely makes Terraform warn.
        user_config = env.get("TF_CLI_CONFIG_FILE")
        if user_config and not Path(user_config).is_file():
            env.pop("TF_CLI_CONFIG_FILE")
        env["TF_PLUGIN_CACHE_DIR"] = str(cache.resolve())
    env.update(
        {
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",  # no version check call to HashiCorp
        }
    )
    return env


def stage_tree(dest: Path, source: Path = REPO_ROOT) -> Path:
    """Copy the Terraform sources of ``source`` (root, modules/, examples/) into ``dest``.

    Running Terraform in the copy keeps ``.terraform/``, lock files and state out of the
    working tree, and the relative module sources (``../../modules/x``) still resolve.
    """
    for folder in [source, *sorted(p for p in source.glob("modules/*") if p.is_dir())]:
        _copy_sources(folder, dest / folder.relative_to(source))
    for folder in sorted(p for p in source.glob("examples/*") if p.is_dir()):
        _copy_sources(folder, dest / folder.relative_to(source))
    return dest


def _copy_sources(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for pattern in _TERRAFORM_SOURCES:
        for file in src.glob(pattern):
            shutil.copy2(file, dst / file.name)


class TerraformError(RuntimeError):
    """A terraform command exited non-zero; carries its output."""

    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args_ = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        hint = ""
        if any(marker in stderr for marker in _REGISTRY_FAILURES) and not os.environ.get(
            MIRROR_ENV
        ):
            hint = (
                f"\nhint: the provider registry looks unreachable; set {MIRROR_ENV} to a folder "
                "holding a filesystem mirror of hashicorp/aws (e.g. /opt/tf-plugins)"
            )
        super().__init__(f"terraform {' '.join(args)} exited {returncode}\n{stderr.strip()}{hint}")


@dataclass
class Terraform:
    """``terraform -chdir=DIR ...`` with an environment from ``terraform_env`` (+ ``aws_env``).

    Every call records its wall time in ``timings`` (command name -> seconds, last run).
    """

    dir: Path
    env: Mapping[str, str]
    binary: str = "terraform"
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, f"-chdir={self.dir}", *args]
        started = time.monotonic()
        proc = subprocess.run(cmd, env=dict(self.env), capture_output=True, text=True, check=False)
        self.timings[args[0]] = time.monotonic() - started
        if check and proc.returncode != 0:
            raise TerraformError(list(args), proc.returncode, proc.stdout, proc.stderr)
        return proc

    def init(self, *, backend: bool = True) -> None:
        self.run("init", "-no-color", f"-backend={str(backend).lower()}")

    def validate(self) -> dict[str, Any]:
        """``terraform validate -json``; raises unless the configuration is valid."""
        proc = self.run("validate", "-json", "-no-color", check=False)
        result = json.loads(proc.stdout)
        if not result.get("valid"):
            raise TerraformError(["validate"], proc.returncode, proc.stdout, proc.stdout)
        return result

    def plan(
        self, variables: Mapping[str, Any] | None = None, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run("plan", "-no-color", *_var_args(variables), *extra, check=check)

    def apply(
        self, variables: Mapping[str, Any] | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-auto-approve", "-no-color", *_var_args(variables), *extra)

    def destroy(
        self, variables: Mapping[str, Any] | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run("destroy", "-auto-approve", "-no-color", *_var_args(variables), *extra)

    def plan_diagnostics(
        self, variables: Mapping[str, Any] | None = None, *extra: str
    ) -> list[dict[str, Any]]:
        """Diagnostics of a ``plan -json`` (unwrapped text, unlike the human output)."""
        proc = self.run("plan", "-json", *_var_args(variables), *extra, check=False)
        messages = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        return [m["diagnostic"] for m in messages if m.get("type") == "diagnostic"]

    def output_json(self) -> dict[str, Any]:
        """Root outputs as plain values (``terraform output -json`` without the type wrappers)."""
        raw = json.loads(self.run("output", "-json").stdout)
        return {name: item["value"] for name, item in raw.items()}

    def show_json(self) -> dict[str, Any]:
        """The state as ``terraform show -json`` prints it."""
        return json.loads(self.run("show", "-json").stdout)

    def state_resources(self) -> dict[str, dict[str, Any]]:
        """Every resource instance in the state, by address, with its attribute values."""
        found: dict[str, dict[str, Any]] = {}

        def walk(module: Mapping[str, Any]) -> None:
            for resource in module.get("resources", []):
                found[resource["address"]] = resource["values"]
            for child in module.get("child_modules", []):
                walk(child)

        walk(self.show_json().get("values", {}).get("root_module", {}))
        return found


def _var_args(variables: Mapping[str, Any] | None) -> list[str]:
    """``-var name=value`` pairs; non-strings are JSON, which HCL reads as the same value."""
    args: list[str] = []
    for name, value in (variables or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        args.append(f"-var={name}={text}")
    return args
