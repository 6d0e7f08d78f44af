"""Upgrades of the applied stack from earlier addresses: the functions when they were
`module "chat"` and `module "qa"`, the endpoint before existing_endpoint_name gave it a count.
main.tf's moved blocks must adopt them in place, with nothing replaced."""

from __future__ import annotations

import json

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.stack


def test_a_stack_from_before_for_each_plans_only_moves(stack: Stack) -> None:
    # The same resources under the addresses of the two former module blocks: the moved blocks
    # of main.tf must adopt them in place, with nothing replaced.
    tf = stack.live().tf
    for function in ("chat", "qa"):
        tf.run("state", "mv", f'module.functions["{function}"]', f"module.{function}")
    try:
        tf.plan(stack.variables, "-refresh=false", "-out=upgrade.tfplan")
        changes = json.loads(tf.run("show", "-json", "upgrade.tfplan").stdout)["resource_changes"]
    finally:
        for function in ("chat", "qa"):
            tf.run("state", "mv", f"module.{function}", f'module.functions["{function}"]')
    moved = {
        c["address"]: c["previous_address"]
        for c in changes
        if c["address"].startswith("module.functions[")
    }
    assert len(moved) >= 10, moved  # role, policy, log group, function and URL, per function
    for address, previous in moved.items():
        function = address.split('"')[1]
        assert previous == address.replace(f'module.functions["{function}"]', f"module.{function}")
    changed = [c["address"] for c in changes if c["change"]["actions"] not in (["no-op"], ["read"])]
    assert changed == []


def test_a_stack_from_before_existing_endpoint_name_plans_only_moves(stack: Stack) -> None:
    # module.llm had no count before existing_endpoint_name; its moved block adopts the
    # endpoint as module.llm[0] with nothing replaced.
    tf = stack.live().tf
    tf.run("state", "mv", "module.llm[0]", "module.llm")
    try:
        tf.plan(stack.variables, "-refresh=false", "-out=llm-upgrade.tfplan")
        shown = json.loads(tf.run("show", "-json", "llm-upgrade.tfplan").stdout)
    finally:
        tf.run("state", "mv", "module.llm", "module.llm[0]")
    changes = shown["resource_changes"]
    moved = [c for c in changes if c.get("previous_address", "").startswith("module.llm.")]
    assert any(c["address"] == "module.llm[0].aws_sagemaker_endpoint.this[0]" for c in moved)
    changed = [c["address"] for c in changes if c["change"]["actions"] not in (["no-op"], ["read"])]
    assert changed == []
