# -----------------------------------------------------------------------------
# Alarms on the alias the URL serves (docs/operations.md says what each means and what to do)
# -----------------------------------------------------------------------------

locals {
  # Lambda publishes an alias's metrics, its URL's included, under FunctionName and Resource
  # (function:alias); the URL serves the alias only, so that is where its traffic shows.
  alarm_dimensions = {
    FunctionName = var.function_name
    Resource     = "${var.function_name}:${var.alias_name}"
  }

  alarms = var.alarms_enabled ? {
    url-5xx = {
      metric      = "Url5xxCount"
      statistic   = "Sum"
      threshold   = var.alarm_thresholds.url_5xx_count
      description = "The function URL answered at least ${var.alarm_thresholds.url_5xx_count} 5xx responses in ${var.alarm_thresholds.period_seconds} s. The code answers its failures as JSON 5xx (model, history, documents, bugs), so Lambda's Errors stays at 0 for them: this alarm and the Errors metric by error_code see them."
    }
    errors = {
      metric      = "Errors"
      statistic   = "Sum"
      threshold   = var.alarm_thresholds.errors
      description = "The function failed outside its own error handling (timeout, out of memory, a failed init) at least ${var.alarm_thresholds.errors} times in ${var.alarm_thresholds.period_seconds} s."
    }
    throttles = {
      metric      = "Throttles"
      statistic   = "Sum"
      threshold   = var.alarm_thresholds.throttles
      description = "Lambda refused at least ${var.alarm_thresholds.throttles} invocations for lack of concurrency in ${var.alarm_thresholds.period_seconds} s; callers got 429."
    }
    duration = {
      metric      = "Duration"
      statistic   = "Maximum"
      threshold   = floor(var.timeout * 1000 * var.alarm_thresholds.duration_percent_of_timeout / 100)
      description = "A request ran for ${var.alarm_thresholds.duration_percent_of_timeout}% of the ${var.timeout} s timeout or longer; Lambda kills it at the timeout."
    }
  } : {}
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.alarms

  alarm_name          = "${var.function_name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = local.alarm_dimensions
  statistic           = each.value.statistic
  period              = var.alarm_thresholds.period_seconds
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  # No request in a period is no failure.
  treat_missing_data = "notBreaching"
  alarm_actions      = var.alarm_actions
  ok_actions         = var.alarm_actions
  tags               = var.tags
}
