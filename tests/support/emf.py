"""CloudWatch embedded metric format (EMF): find the lines in a log, check them against the spec.

The rules are AWS's specification ("Specification: Embedded metric format", CloudWatch User
Guide), written out here rather than taken from the library that emits the lines, so a
Powertools change that breaks the format fails the tests:
- the root is a JSON object with `_aws`, whose `Timestamp` is epoch milliseconds (a
  non-negative integer) and whose `CloudWatchMetrics` is a list of metric directives;
- a directive has a `Namespace` (1-255 characters, not only whitespace), `Dimensions` (a list
  of dimension sets, each a list of at most 30 names) and `Metrics` (at most 100 definitions,
  each a `Name` of 1-255 characters, an optional `Unit` from CloudWatch's list, an optional
  `StorageResolution` of 1 or 60);
- every dimension a set names is a root member whose value is a string of 1-1024 characters;
- every metric a directive defines is a root member whose value is a number or a list of at
  most 100 numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

UNITS = frozenset(
    {
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
        "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
        "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
        "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
        "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    }
)  # fmt: skip
MAX_DIMENSIONS_PER_SET = 30
MAX_METRICS_PER_DIRECTIVE = 100
MAX_VALUES_PER_METRIC = 100


def emf_records(log: str | Iterable[str]) -> list[dict[str, Any]]:
    """The log lines that are EMF documents (JSON objects with an `_aws` member), parsed."""
    lines = log.splitlines() if isinstance(log, str) else log
    records = []
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith("{") or '"_aws"' not in stripped:
            continue
        document = json.loads(stripped)
        if isinstance(document, dict) and "_aws" in document:
            records.append(document)
    return records


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _name_ok(name: object) -> bool:
    return isinstance(name, str) and 1 <= len(name) <= 255 and bool(name.strip())


def emf_problems(record: object) -> list[str]:
    """Every way `record` breaks the EMF specification; empty when it is a valid document."""
    if not isinstance(record, dict):
        return ["the root is not a JSON object"]
    meta = record.get("_aws")
    if not isinstance(meta, dict):
        return ["_aws is missing or not an object"]
    problems = []
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        problems.append(f"_aws.Timestamp is not epoch milliseconds: {timestamp!r}")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [*problems, "_aws.CloudWatchMetrics is not a list"]
    for index, directive in enumerate(directives):
        problems += _directive_problems(record, directive, f"CloudWatchMetrics[{index}]")
    return problems


def _directive_problems(record: dict[str, Any], directive: object, where: str) -> list[str]:
    if not isinstance(directive, dict):
        return [f"{where} is not an object"]
    problems = []
    if not _name_ok(directive.get("Namespace")):
        problems.append(f"{where}.Namespace is not 1-255 characters")
    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list) or not all(isinstance(s, list) for s in dimension_sets):
        problems.append(f"{where}.Dimensions is not a list of lists")
        dimension_sets = []
    for dimension_set in dimension_sets:
        if len(dimension_set) > MAX_DIMENSIONS_PER_SET:
            problems.append(f"{where}: a dimension set has over 30 dimensions")
        for dimension in dimension_set:
            value = record.get(dimension) if isinstance(dimension, str) else None
            if not (isinstance(value, str) and 1 <= len(value) <= 1024):
                problems.append(f"dimension {dimension!r} has no string value at the root")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list):
        return [*problems, f"{where}.Metrics is not a list"]
    if len(metrics) > MAX_METRICS_PER_DIRECTIVE:
        problems.append(f"{where} defines {len(metrics)} metrics, over 100")
    for metric in metrics:
        problems += _metric_problems(record, metric, where)
    return problems


def _metric_problems(record: dict[str, Any], metric: object, where: str) -> list[str]:
    if not isinstance(metric, dict) or not _name_ok(metric.get("Name")):
        return [f"{where}: a metric definition has no valid Name"]
    name = metric["Name"]
    problems = []
    if "Unit" in metric and metric["Unit"] not in UNITS:
        problems.append(f"metric {name}: unit {metric['Unit']!r} is not CloudWatch's")
    if metric.get("StorageResolution", 60) not in (1, 60):
        problems.append(f"metric {name}: StorageResolution is neither 1 nor 60")
    value = record.get(name)
    if isinstance(value, list):
        if not value or len(value) > MAX_VALUES_PER_METRIC:
            problems.append(f"metric {name}: a value list must hold 1-100 numbers")
        if not all(_is_number(v) for v in value):
            problems.append(f"metric {name}: a value is not a number")
    elif not _is_number(value):
        problems.append(f"metric {name} has no numeric value at the root")
    return problems


def metric_values(records: Iterable[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    """Every value of metric `name` in `records` whose dimensions include `dimensions`."""
    values: list[float] = []
    for record in records:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            if name not in {m["Name"] for m in directive["Metrics"]}:
                continue
            if any(record.get(k) != v for k, v in dimensions.items()):
                continue
            value = record[name]
            values.extend(value if isinstance(value, list) else [value])
    return values


def dimension_sets(records: Iterable[dict[str, Any]], name: str) -> list[list[str]]:
    """The dimension sets metric `name` is published under, over all `records`."""
    return [
        sorted(dimension_set)
        for record in records
        for directive in record["_aws"]["CloudWatchMetrics"]
        if name in {m["Name"] for m in directive["Metrics"]}
        for dimension_set in directive["Dimensions"]
    ]
