# -----------------------------------------------------------------------------
# Alarms on the endpoint's variant (docs/operations.md says what each means and what to do)
# -----------------------------------------------------------------------------

locals {
  endpoint_alarm_dimensions = {
    EndpointName = var.name
    VariantName  = local.variant_name
  }

  # SageMaker sums utilisation over an instance's devices: 0-100% per GPU, per vCPU. GPU
  # instances alarm on GPU compute: TGI and vLLM reserve most GPU memory for their KV cache at
  # start, so GPUMemoryUtilization sits near its maximum whatever the load (the dashboard
  # shows it). CPU instances alarm on CPU; their vCPUs follow the size (large 2, xlarge 4,
  # Nxlarge 4N, as in the c5, m5 and r5 families).
  instance_size = regex("\\.([0-9]*)(medium|large|xlarge)$", var.instance_type)
  instance_vcpus = (
    local.instance_size[1] == "xlarge" ? 4 * (local.instance_size[0] == "" ? 1 : tonumber(local.instance_size[0])) : 2
  )
  utilization_alarm = local.num_gpus > 0 ? {
    metric  = "GPUUtilization"
    devices = local.num_gpus
    unit    = "GPU"
    } : {
    metric  = "CPUUtilization"
    devices = local.instance_vcpus
    unit    = "vCPU"
  }

  endpoint_alarms = var.alarms_enabled && var.endpoint_enabled ? {
    invocation-5xx = {
      namespace          = "AWS/SageMaker"
      metric             = "Invocation5XXErrors"
      statistic          = "Sum"
      extended_statistic = null
      threshold          = var.alarm_thresholds.invocation_5xx_errors
      description        = "The endpoint answered at least ${var.alarm_thresholds.invocation_5xx_errors} invocations with a 5xx in ${var.alarm_thresholds.period_seconds} s: the container failed, is overloaded or is restarting."
    }
    model-latency = {
      namespace          = "AWS/SageMaker"
      metric             = "ModelLatency"
      statistic          = null
      extended_statistic = "p90"
      # ModelLatency is in microseconds.
      threshold   = var.alarm_thresholds.model_latency_p90_ms * 1000
      description = "The slowest tenth of model calls took ${var.alarm_thresholds.model_latency_p90_ms} ms or more in ${var.alarm_thresholds.period_seconds} s; SageMaker ends an invocation at 60 s."
    }
    utilization = {
      namespace          = "/aws/sagemaker/Endpoints"
      metric             = local.utilization_alarm.metric
      statistic          = "Average"
      extended_statistic = null
      threshold          = var.alarm_thresholds.utilization_percent * local.utilization_alarm.devices
      description        = "${local.utilization_alarm.metric} averaged ${var.alarm_thresholds.utilization_percent}% or more per ${local.utilization_alarm.unit} (${local.utilization_alarm.devices} per instance) over ${var.alarm_thresholds.period_seconds} s: requests queue at the model."
    }
  } : {}
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.endpoint_alarms

  alarm_name          = "${var.name}-endpoint-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = local.endpoint_alarm_dimensions
  statistic           = each.value.statistic
  extended_statistic  = each.value.extended_statistic
  period              = var.alarm_thresholds.period_seconds
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = var.tags

  depends_on = [aws_sagemaker_endpoint.this]
}
