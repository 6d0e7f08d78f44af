"""The applied stack's monitoring: alarms, the dashboard, and the functions' EMF metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.emf import emf_problems, emf_records, metric_values
from tests.support.stack import ALARM_TOPIC, ALIAS, NAME, REGION, Stack, deployed_endpoint
from tools.lambda_sandbox import artifacts as sandbox

pytestmark = pytest.mark.stack


# Every alarm the stack creates: (namespace, metric, dimensions, statistic) by alarm name.
EXPECTED_ALARMS = {
    **{
        f"{NAME}-{function}-{kind}": (
            "AWS/Lambda",
            metric,
            {"FunctionName": f"{NAME}-{function}", "Resource": f"{NAME}-{function}:{ALIAS}"},
            statistic,
        )
        for function in ("chat", "qa")
        for kind, metric, statistic in [
            ("url-5xx", "Url5xxCount", "Sum"),
            ("errors", "Errors", "Sum"),
            ("throttles", "Throttles", "Sum"),
            ("duration", "Duration", "Maximum"),
        ]
    },
    f"{NAME}-endpoint-invocation-5xx": (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        {"EndpointName": NAME, "VariantName": "AllTraffic"},
        "Sum",
    ),
    f"{NAME}-endpoint-model-latency": (
        "AWS/SageMaker",
        "ModelLatency",
        {"EndpointName": NAME, "VariantName": "AllTraffic"},
        "p90",
    ),
    # ml.g5.xlarge has one GPU: GPU compute, not GPU memory (TGI reserves that at start).
    f"{NAME}-endpoint-utilization": (
        "/aws/sagemaker/Endpoints",
        "GPUUtilization",
        {"EndpointName": NAME, "VariantName": "AllTraffic"},
        "Average",
    ),
}


def alarms(stack: Stack) -> dict[str, dict[str, Any]]:
    described = stack.live().client("cloudwatch").describe_alarms(AlarmNamePrefix=NAME)
    return {alarm["AlarmName"]: alarm for alarm in described["MetricAlarms"]}


def test_alarms_watch_the_urls_functions_and_endpoint_and_notify_the_actions(
    stack: Stack,
) -> None:
    found = alarms(stack)
    assert found.keys() == {*EXPECTED_ALARMS, f"{NAME}-chat-history-throttles"}
    for name, (namespace, metric, dimensions, statistic) in EXPECTED_ALARMS.items():
        alarm = found[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric), name
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dimensions, name
        assert statistic in (alarm.get("Statistic"), alarm.get("ExtendedStatistic")), name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Period"] == 300
        assert alarm["TreatMissingData"] == "notBreaching"
    for name, alarm in found.items():
        assert alarm["AlarmActions"] == [ALARM_TOPIC], name
        assert alarm["OKActions"] == [ALARM_TOPIC], name
        assert alarm["ActionsEnabled"] is True, name
    # The README's default thresholds; duration in ms, at 80% of the 180 s timeout.
    assert found[f"{NAME}-chat-url-5xx"]["Threshold"] == 5
    assert found[f"{NAME}-qa-duration"]["Threshold"] == 144_000
    assert found[f"{NAME}-endpoint-model-latency"]["Threshold"] == 30_000_000  # microseconds
    assert found[f"{NAME}-endpoint-utilization"]["Threshold"] == 90


def test_the_history_table_alarm_sums_its_throttled_reads_and_writes(stack: Stack) -> None:
    alarm = alarms(stack)[f"{NAME}-chat-history-throttles"]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    assert queries["throttles"]["Expression"] == "FILL(reads, 0) + FILL(writes, 0)"
    assert queries["throttles"]["ReturnData"] is True
    for query_id, metric in [("reads", "ReadThrottleEvents"), ("writes", "WriteThrottleEvents")]:
        watched = queries[query_id]["MetricStat"]["Metric"]
        assert (watched["Namespace"], watched["MetricName"]) == ("AWS/DynamoDB", metric)
        assert watched["Dimensions"] == [
            {"Name": "TableName", "Value": stack.outputs["chat_history_table_name"]}
        ]


def test_the_outputs_list_every_alarm(stack: Stack) -> None:
    listed = {
        arn.rsplit(":", 1)[1]
        for group in stack.live().outputs["alarm_arns"].values()
        for arn in group.values()
    }
    assert listed == alarms(stack).keys()


def test_the_dashboard_exists_and_shows_the_apps_and_the_endpoints_metrics(
    stack: Stack,
) -> None:
    outputs = stack.live().outputs
    assert outputs["dashboard_url"] == (
        f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
        f"#dashboards/dashboard/{NAME}"
    )
    body = json.loads(stack.client("cloudwatch").get_dashboard(DashboardName=NAME)["DashboardBody"])
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    text = json.dumps(body)
    for shown in [
        "Requests",
        "Errors",
        "FirstTokenLatency",
        "RequestLatency",
        "InputTokens",
        "OutputTokens",
        "CutAnswers",
        "ColdStarts",
        "Url5xxCount",
        "Invocations",
        "ModelLatency",
        "/aws/sagemaker/Endpoints",
    ]:
        assert shown in text, shown
    assert outputs["metrics_namespace"] == f"LLMApp/{NAME}"
    assert f'"{outputs["metrics_namespace"]}' in text
    assert titles[0] == "Alarms"
    [alarm_widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(
        alarm["AlarmArn"] for alarm in alarms(stack).values()
    )


def test_a_request_logs_emf_metrics_with_tokens_and_latency(
    stack: Stack, built_artifacts: Path, tmp_path: Path
) -> None:
    """The packaged chat function, with its deployed environment, in a fresh interpreter:
    its log carries EMF lines in the stack's namespace that validate against the spec."""
    live = stack.live()
    unpacked = sandbox.unpack(built_artifacts, tmp_path / "artifacts", ["chat"])
    with deployed_endpoint(live, "chat") as (environment, endpoint_url):
        env = sandbox.lambda_environment(
            endpoint_url,
            tmp_path,
            **environment,
            AWS_ENDPOINT_URL_DYNAMODB=live.moto.url,
        )
        run = sandbox.run_isolated(
            unpacked.sys_path("chat"),
            env,
            handler=sandbox.HANDLERS["chat"],
            events=[sandbox.function_url_event()],
        )
    assert run.responses[0]["statusCode"] == 200, run.responses[0]
    records = emf_records(run.log)
    assert records
    for record in records:
        assert emf_problems(record) == [], record
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == live.outputs["metrics_namespace"]
        assert record["service"] == "chat"
    [input_tokens] = metric_values(records, "InputTokens")
    [output_tokens] = metric_values(records, "OutputTokens")
    assert input_tokens > 0
    assert output_tokens > 0
    assert metric_values(records, "ModelLatency")[0] > 0
    assert metric_values(records, "RequestLatency")[0] > 0
    assert metric_values(records, "Requests", status_class="2xx") == [1]
    # Tracing is off (tracing_mode is PassThrough): the X-Ray SDK never loaded.
    assert not [m for m in run.loaded_modules if m.startswith("aws_xray_sdk")]
