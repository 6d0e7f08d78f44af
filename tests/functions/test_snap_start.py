"""SnapStart: the handlers register what a restored environment must redo, with the runtime's
own hook registry (snapshot-restore-py, which AWS's Python runtime and awslambdaric ship)."""

from __future__ import annotations

import random

import pytest

from llm_app.runtime import snap_start

hooks = pytest.importorskip("snapshot_restore_py")


@pytest.mark.parametrize("module", ["chat.handler", "qa.handler"])
def test_each_handler_registers_the_after_restore_reseed(load_handler, module: str) -> None:
    registry = hooks._after_restore_registry
    before = len(registry)

    load_handler(module)

    assert [entry[0] for entry in registry[before:]] == [snap_start.reseed_random]
    del registry[before:]


def test_restored_copies_of_one_generator_state_diverge_after_the_reseed() -> None:
    snapshot = random.getstate()
    draws = []
    for _ in range(2):  # two environments restored from one snapshot
        random.setstate(snapshot)
        snap_start.reseed_random()
        draws.append([random.random() for _ in range(4)])
    assert draws[0] != draws[1]


@pytest.mark.parametrize("module", ["chat.handler", "qa.handler"])
def test_the_init_ends_collecting_again_with_its_objects_frozen(load_handler, module: str) -> None:
    import gc

    gc.unfreeze()
    load_handler(module)

    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
