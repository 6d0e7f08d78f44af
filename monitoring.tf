# -----------------------------------------------------------------------------
# Monitoring: the functions' own metrics, the history table's alarm, the dashboard
# (the functions' and the endpoint's alarms live in their modules; docs/operations.md)
# -----------------------------------------------------------------------------

locals {
  # One namespace per stack for the metrics the code logs as EMF lines (llm_app.metrics).
  metrics_namespace = "LLMApp/${var.name}"
  period            = var.alarm_thresholds.period_seconds

  # The history table's throttled reads and writes, when the table exists.
  history_alarms_enabled = var.alarms_enabled && var.chat_history_enabled

  alarm_arns = merge(
    { for function, module in module.functions : function => module.alarm_arns },
    { endpoint = try(module.llm[0].alarm_arns, {}) },
    { history = { for kind, alarm in aws_cloudwatch_metric_alarm.history_throttles : kind => alarm.arn } },
  )

  console_hosts = {
    aws        = "console.aws.amazon.com"
    aws-cn     = "console.amazonaws.cn"
    aws-us-gov = "console.amazonaws-us-gov.com"
  }
  dashboard_url = format(
    "https://%s/cloudwatch/home?region=%s#dashboards/dashboard/%s",
    lookup(local.console_hosts, data.aws_partition.current.partition, "console.aws.amazon.com"),
    local.region, var.name,
  )
}

resource "aws_cloudwatch_metric_alarm" "history_throttles" {
  for_each = local.history_alarms_enabled ? { throttles = true } : {}

  alarm_name          = "${var.name}-chat-history-throttles"
  alarm_description   = "DynamoDB throttled at least ${var.alarm_thresholds.dynamodb_throttles} reads or writes of the chat history table in ${local.period} s; chat answers 503 history_unavailable when its retries run out."
  evaluation_periods  = 1
  threshold           = var.alarm_thresholds.dynamodb_throttles
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "throttles"
    expression  = "FILL(reads, 0) + FILL(writes, 0)"
    label       = "Throttled reads and writes"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { reads = "ReadThrottleEvents", writes = "WriteThrottleEvents" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = metric_query.value
        dimensions  = { TableName = aws_dynamodb_table.chat_history[0].name }
        stat        = "Sum"
        period      = local.period
      }
    }
  }
}

# -----------------------------------------------------------------------------
# Dashboard
# -----------------------------------------------------------------------------

locals {
  namespace_in_search = "\"${local.metrics_namespace}\""
  # SEARCH finds every value of a dimension (each status class, each error code, the
  # endpoint's variants, whichever endpoint this stack calls) without listing them here.
  dashboard_widgets = concat(
    [
      {
        title   = "Requests by function and status class"
        metrics = [[{ id = "requests", expression = "SEARCH('{${local.namespace_in_search},service,status_class} MetricName=\"Requests\"', 'Sum', ${local.period})" }]]
      },
      {
        title   = "Errors by code"
        metrics = [[{ id = "errors", expression = "SEARCH('{${local.namespace_in_search},error_code,service} MetricName=\"Errors\"', 'Sum', ${local.period})" }]]
      },
      {
        title = "Latency: first token and total (ms)"
        metrics = flatten([
          for function in keys(local.functions) : [
            for metric in ["FirstTokenLatency", "RequestLatency"] : [
              for stat in ["p50", "p90"] : [[local.metrics_namespace, metric, "service", function, { stat = stat, label = "${function} ${metric} ${stat}" }]]
            ]
          ]
        ])
      },
      {
        title = "Tokens in and out"
        metrics = flatten([
          for function in keys(local.functions) : [
            for metric in ["InputTokens", "OutputTokens"] : [[local.metrics_namespace, metric, "service", function, { stat = "Sum", label = "${function} ${metric}" }]]
          ]
        ])
      },
      {
        title = "Model calls and answers cut at max_new_tokens"
        metrics = flatten([
          for function in keys(local.functions) : [
            for metric in ["ModelCalls", "CutAnswers"] : [[local.metrics_namespace, metric, "service", function, { stat = "Sum", label = "${function} ${metric}" }]]
          ]
        ])
      },
      {
        title = "Cold starts, QA chunks, history turns used"
        metrics = [
          for series in [["ColdStarts", "chat", "Sum"], ["ColdStarts", "qa", "Sum"], ["QaChunks", "qa", "Average"], ["HistoryTurns", "chat", "Average"]] :
          [local.metrics_namespace, series[0], "service", series[1], { stat = series[2], label = "${series[1]} ${series[0]} (${series[2]})" }]
        ]
      },
      {
        title = "Function URLs: requests, 4xx, 5xx"
        metrics = flatten([
          for function, module in module.functions : [
            for metric in ["UrlRequestCount", "Url4xxCount", "Url5xxCount"] : [["AWS/Lambda", metric, "FunctionName", module.function_name, "Resource", "${module.function_name}:${module.alias_name}", { stat = "Sum", label = "${function} ${metric}" }]]
          ]
        ])
      },
      {
        title = "Functions: duration p99 (ms), errors, throttles"
        metrics = flatten([
          for function, module in module.functions : [
            for series in [["Duration", "p99"], ["Errors", "Sum"], ["Throttles", "Sum"]] : [["AWS/Lambda", series[0], "FunctionName", module.function_name, "Resource", "${module.function_name}:${module.alias_name}", { stat = series[1], label = "${function} ${series[0]} ${series[1]}" }]]
          ]
        ])
      },
      {
        title   = "Endpoint: invocations and errors"
        metrics = [[{ id = "invocations", expression = "SEARCH('{AWS/SageMaker,EndpointName,VariantName} EndpointName=\"${local.endpoint_name}\" (MetricName=\"Invocations\" OR MetricName=\"Invocation4XXErrors\" OR MetricName=\"Invocation5XXErrors\")', 'Sum', ${local.period})" }]]
      },
      {
        title   = "Endpoint: model latency p90 (microseconds)"
        metrics = [[{ id = "latency", expression = "SEARCH('{AWS/SageMaker,EndpointName,VariantName} EndpointName=\"${local.endpoint_name}\" (MetricName=\"ModelLatency\" OR MetricName=\"OverheadLatency\")', 'p90', ${local.period})" }]]
      },
      {
        title   = "Endpoint: utilisation (% summed over GPUs or vCPUs)"
        metrics = [[{ id = "utilization", expression = "SEARCH('{/aws/sagemaker/Endpoints,EndpointName,VariantName} EndpointName=\"${local.endpoint_name}\"', 'Average', ${local.period})" }]]
      },
    ],
    var.chat_history_enabled ? [{
      title = "Chat history table: throttled reads and writes"
      metrics = [
        for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] :
        ["AWS/DynamoDB", metric, "TableName", aws_dynamodb_table.chat_history[0].name, { stat = "Sum" }]
      ]
    }] : [],
  )

  alarm_arn_list = flatten([for group in values(local.alarm_arns) : values(group)])
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.dashboard_enabled ? 1 : 0

  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(
      length(local.alarm_arn_list) > 0 ? [{
        type       = "alarm"
        x          = 0
        y          = 0
        width      = 24
        height     = 3
        properties = { title = "Alarms", alarms = local.alarm_arn_list }
      }] : [],
      [
        for index, widget in local.dashboard_widgets : {
          type   = "metric"
          x      = (index % 2) * 12
          y      = 3 + floor(index / 2) * 6
          width  = 12
          height = 6
          properties = {
            title   = widget.title
            region  = local.region
            view    = "timeSeries"
            stacked = false
            period  = local.period
            metrics = widget.metrics
          }
        }
      ],
    )
  })
}
