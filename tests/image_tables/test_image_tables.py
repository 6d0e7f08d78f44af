"""The committed image tables (modules/sagemaker-tgi/images.json) are the pinned SDK's.

Two checks: the committed file is what `python -m tools.image_tables` writes from the pinned
sagemaker-core (so a hand edit or a new pin without `make images` fails), and what it writes
is, region by region, the URI the SDK's own `image_uris.retrieve` returns.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.tools import missing_tool
from tools.image_tables.generate import ENGINES, OUTPUT, generate, image_table, load_config

try:
    from sagemaker.core import image_uris as _image_uris
except ImportError:
    _image_uris = None


@pytest.fixture(scope="module")
def image_uris() -> Any:
    if _image_uris is None:
        missing_tool("sagemaker-core is not installed (make venv installs requirements/dev.txt)")
    return _image_uris


def test_committed_tables_match_the_pinned_sdk(image_uris: Any) -> None:
    assert OUTPUT.read_text(encoding="utf-8") == generate(), (
        f"{OUTPUT.name} drifted from the pinned sagemaker-core; run `make images`"
    )


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_region_gets_the_uri_the_sdk_retrieves(image_uris: Any, engine: str) -> None:
    table = image_table(engine)
    framework = ENGINES[engine]
    versions = load_config(framework)["inference"]["versions"]
    assert table.version in versions
    # Every region the SDK serves this release in, and no other.
    assert sorted(table.registries) == sorted(versions[table.version]["registries"])
    for region in table.registries:
        expected = image_uris.retrieve(
            framework,
            region=region,
            version=table.version,
            instance_type="ml.g5.xlarge",
            image_scope="inference",
        )
        assert table.uri(region) == expected, region


def test_every_partition_is_covered_with_its_dns_suffix(image_uris: Any) -> None:
    hosts = {host.split(".dkr.ecr.", 1)[1] for host in image_table("tgi").registries.values()}
    suffixes = {host.split(".", 1)[1] for host in hosts}
    assert suffixes == {
        "amazonaws.com",
        "amazonaws.com.cn",
        "amazonaws.eu",
        "c2s.ic.gov",
        "sc2s.sgov.gov",
        "csp.hci.ic.gov",
        "cloud.adc-e.uk",
    }


def test_check_mode_reports_drift(tmp_path, monkeypatch, capsys) -> None:
    from tools.image_tables import generate as module

    stale = tmp_path / "images.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(module, "OUTPUT", stale)
    monkeypatch.setattr(module, "REPO_ROOT", tmp_path)
    assert module.main(["--check"]) == 1
    assert "run `make images`" in capsys.readouterr().err
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
