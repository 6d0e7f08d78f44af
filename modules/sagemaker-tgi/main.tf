data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # `id` is the region name in provider 5.x and 6.x alike; `name` is deprecated in 6.x and
  # `region` does not exist in 5.x, so either of those would break one supported major.
  region     = data.aws_region.current.id
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  # Each engine's newest image and the registry host of every region that has it, from the
  # SageMaker SDK's tables: images.json is generated data (`make images`), as in the SDK itself.
  serving_images = jsondecode(file("${path.module}/images.json")).serving_images
  serving_image  = local.serving_images[var.serving_engine]
  image_tag      = coalesce(var.image_tag, local.serving_image.tag)
  image_registry = lookup(local.serving_image.registries, local.region, null)
  derived_image_uri = local.image_registry == null ? null : format(
    "%s/%s:%s", local.image_registry, local.serving_image.repository, local.image_tag,
  )
  image_uri = var.image_uri != null ? var.image_uri : local.derived_image_uri

  # ECR repository of the image, for a pull permission scoped to that one repository.
  image_parts = local.image_uri == null ? null : regex(
    "^(?P<account>[0-9]{12})\\.dkr\\.ecr\\.(?P<region>[a-z0-9-]+)\\.[^/]+/(?P<repository>[^:@]+)",
    local.image_uri,
  )
  image_repository_arn = local.image_parts == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s",
    local.partition, local.image_parts.region, local.image_parts.account, local.image_parts.repository,
  )

  # GPUs per instance, for SM_NUM_GPUS (the DLC passes it to TGI as the shard count). Types
  # not listed are CPU instances (TGI runs one CPU shard) unless var.num_gpus says otherwise.
  instance_gpus = {
    "ml.g4dn.xlarge"   = 1
    "ml.g4dn.2xlarge"  = 1
    "ml.g4dn.4xlarge"  = 1
    "ml.g4dn.8xlarge"  = 1
    "ml.g4dn.16xlarge" = 1
    "ml.g4dn.12xlarge" = 4
    "ml.g5.xlarge"     = 1
    "ml.g5.2xlarge"    = 1
    "ml.g5.4xlarge"    = 1
    "ml.g5.8xlarge"    = 1
    "ml.g5.16xlarge"   = 1
    "ml.g5.12xlarge"   = 4
    "ml.g5.24xlarge"   = 4
    "ml.g5.48xlarge"   = 8
    "ml.g6.xlarge"     = 1
    "ml.g6.2xlarge"    = 1
    "ml.g6.4xlarge"    = 1
    "ml.g6.8xlarge"    = 1
    "ml.g6.16xlarge"   = 1
    "ml.g6.12xlarge"   = 4
    "ml.g6.24xlarge"   = 4
    "ml.g6.48xlarge"   = 8
    "ml.g6e.xlarge"    = 1
    "ml.g6e.2xlarge"   = 1
    "ml.g6e.4xlarge"   = 1
    "ml.g6e.8xlarge"   = 1
    "ml.g6e.16xlarge"  = 1
    "ml.g6e.12xlarge"  = 4
    "ml.g6e.24xlarge"  = 4
    "ml.g6e.48xlarge"  = 8
    "ml.p3.2xlarge"    = 1
    "ml.p3.8xlarge"    = 4
    "ml.p3.16xlarge"   = 8
    "ml.p3dn.24xlarge" = 8
    "ml.p4d.24xlarge"  = 8
    "ml.p4de.24xlarge" = 8
    "ml.p5.48xlarge"   = 8
    "ml.p5e.48xlarge"  = 8
    "ml.p5en.48xlarge" = 8
  }
  num_gpus = var.num_gpus != null ? var.num_gpus : lookup(local.instance_gpus, var.instance_type, 0)

  max_batch_prefill_tokens = coalesce(var.max_batch_prefill_tokens, var.max_input_tokens + 50)

  # Each engine's documented settings. TGI DLC: HF_MODEL_ID, HF_MODEL_REVISION, the token
  # limits and SM_NUM_GPUS (its shard count). AWS's vLLM DLC (SageMaker tag): every
  # SM_VLLM_<FLAG> becomes vLLM's --<flag> (SM_VLLM_MAX_MODEL_LEN -> --max-model-len).
  engine_environment = {
    tgi = merge(
      {
        HF_MODEL_ID              = var.model_id
        MAX_INPUT_TOKENS         = tostring(var.max_input_tokens)
        MAX_TOTAL_TOKENS         = tostring(var.max_total_tokens)
        MAX_BATCH_PREFILL_TOKENS = tostring(local.max_batch_prefill_tokens)
      },
      var.model_revision == null ? {} : { HF_MODEL_REVISION = var.model_revision },
      # Unset on CPU: the DLC would turn SM_NUM_GPUS=0 into NUM_SHARD=0, which TGI rejects.
      local.num_gpus > 0 ? { SM_NUM_GPUS = tostring(local.num_gpus) } : {},
    )
    vllm = merge(
      {
        SM_VLLM_MODEL = var.model_id
        # vLLM has no separate prompt limit: it refuses prompt + max_tokens > max_model_len.
        SM_VLLM_MAX_MODEL_LEN = tostring(var.max_total_tokens)
      },
      var.model_revision == null ? {} : { SM_VLLM_REVISION = var.model_revision },
      local.num_gpus > 0 ? { SM_VLLM_TENSOR_PARALLEL_SIZE = tostring(local.num_gpus) } : {},
    )
  }

  # Everything but the token, which stays out of outputs and out of the resource names.
  public_environment = merge(local.engine_environment[var.serving_engine], var.container_env)
  # Whether a token is set is no secret; keeping the test non-sensitive keeps the mark on the
  # token value alone, so plans still show the rest of the environment.
  has_hf_token = nonsensitive(var.hf_token != null)
  environment = merge(
    local.public_environment,
    local.has_hf_token ? { HF_TOKEN = var.hf_token } : {},
  )

  # Models and endpoint configs are immutable in SageMaker; a content hash in their names lets
  # create_before_destroy roll a change out as a new model/config and an in-place endpoint
  # update, instead of a name clash. The token enters only as a digest.
  model_name = format("%s-%s", var.name, substr(sha1(jsonencode({
    image       = local.image_uri
    environment = local.public_environment
    token       = local.has_hf_token ? nonsensitive(sha256(var.hf_token)) : ""
  })), 0, 8))

  variant_name = "AllTraffic"
  endpoint_config_name = format("%s-%s", var.name, substr(sha1(jsonencode({
    model          = local.model_name
    instance_type  = var.instance_type
    instance_count = var.instance_count
    startup        = var.container_startup_health_check_timeout
    download       = var.model_data_download_timeout
    kms            = var.kms_key_arn
  })), 0, 8))

  log_group_name = "/aws/sagemaker/Endpoints/${var.name}"

  engine_label = { tgi = "Hugging Face TGI", vllm = "vLLM" }[var.serving_engine]
  # The tag families of each engine's DLC, so a TGI tag cannot end up on the vLLM image.
  image_tag_patterns = {
    tgi  = "^[0-9]+\\.[0-9]+\\.[0-9]+-tgi[0-9]+\\.[0-9]+\\.[0-9]+-gpu-py3[0-9]+-cu[0-9]+-ubuntu[0-9]+\\.[0-9]+(-v[0-9.]+)?$"
    vllm = "^[0-9]+\\.[0-9]+\\.[0-9]+-gpu-py3[0-9]+-cu[0-9]+-ubuntu[0-9]+\\.[0-9]+-sagemaker(-v[0-9.]+)?$"
  }
}

# -----------------------------------------------------------------------------
# Execution role: pull the one image repository, write the endpoint's logs and metrics
# -----------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "SageMakerAssume"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    # Confused-deputy guard: only SageMaker acting for this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name}-sagemaker"
  description          = "SageMaker execution role of the ${var.name} model endpoint"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.role_permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "EcrAuthToken"
    # GetAuthorizationToken has no resource-level permissions; it grants no pull by itself.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = local.image_repository_arn == null ? [] : [local.image_repository_arn]
    content {
      sid       = "EcrPullModelImage"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "EndpointLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [aws_cloudwatch_log_group.this.arn, "${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid = "EndpointMetrics"
    # PutMetricData has no resource-level permissions; the namespace condition scopes it.
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "tgi-endpoint"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.execution.json
}

# -----------------------------------------------------------------------------
# Logs: created up front so retention, encryption and tags apply from the first line
# -----------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest by default; a CMK is optional (log_kms_key_arn).
  #checkov:skip=CKV_AWS_338:Retention is a variable; the short default limits how long logs are kept.
  name              = local.log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# -----------------------------------------------------------------------------
# Model, endpoint configuration, endpoint
# -----------------------------------------------------------------------------

resource "aws_sagemaker_model" "this" {
  #checkov:skip=CKV_AWS_370:Network isolation would stop TGI downloading the weights from the Hugging Face Hub.
  count = var.endpoint_enabled ? 1 : 0

  name               = local.model_name
  execution_role_arn = aws_iam_role.this.arn
  tags               = var.tags

  primary_container {
    image       = local.image_uri
    mode        = "SingleModel"
    environment = local.environment
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition = local.image_uri != null
      error_message = format(
        "No %s image is published in region %s. Set image_uri to a %s image in an ECR repository of that region, or deploy to one of: %s.",
        local.engine_label, local.region, local.engine_label, join(", ", sort(keys(local.serving_image.registries))),
      )
    }
    precondition {
      condition     = var.max_input_tokens < var.max_total_tokens
      error_message = "max_input_tokens (${var.max_input_tokens}) must be below max_total_tokens (${var.max_total_tokens}): the difference is the room left for generated tokens."
    }
    precondition {
      condition     = var.serving_engine != "tgi" || local.max_batch_prefill_tokens >= var.max_input_tokens
      error_message = "max_batch_prefill_tokens (${local.max_batch_prefill_tokens}) must be at least max_input_tokens (${var.max_input_tokens}), or TGI refuses to start."
    }
    precondition {
      condition     = var.serving_engine == "tgi" || var.max_batch_prefill_tokens == null
      error_message = "max_batch_prefill_tokens is a TGI setting; vLLM has none of that name (pass vLLM flags as SM_VLLM_* keys of container_env)."
    }
    precondition {
      condition     = var.image_tag == null || can(regex(local.image_tag_patterns[var.serving_engine], coalesce(var.image_tag, "-")))
      error_message = "image_tag \"${coalesce(var.image_tag, "-")}\" is not a ${local.engine_label} tag (e.g. \"${local.serving_image.tag}\"); set it to one, or use image_uri for any other image."
    }
  }

  depends_on = [aws_iam_role_policy.execution]
}

resource "aws_sagemaker_endpoint_configuration" "this" {
  #checkov:skip=CKV_AWS_98:KMS on the storage volume is refused for instance types with NVMe instance storage (g5, g6, p4d...); set kms_key_arn for EBS-backed types.
  count = var.endpoint_enabled ? 1 : 0

  name        = local.endpoint_config_name
  kms_key_arn = var.kms_key_arn
  tags        = var.tags

  production_variants {
    variant_name                                      = local.variant_name
    model_name                                        = aws_sagemaker_model.this[0].name
    instance_type                                     = var.instance_type
    initial_instance_count                            = var.instance_count
    container_startup_health_check_timeout_in_seconds = var.container_startup_health_check_timeout
    model_data_download_timeout_in_seconds            = var.model_data_download_timeout
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_sagemaker_endpoint" "this" {
  count = var.endpoint_enabled ? 1 : 0

  name                 = var.name
  endpoint_config_name = aws_sagemaker_endpoint_configuration.this[0].name
  tags                 = var.tags

  # How an update of the model or the instances rolls out (null: blue/green all at once).
  dynamic "deployment_config" {
    for_each = var.deployment_config == null ? [] : [var.deployment_config]
    content {
      dynamic "blue_green_update_policy" {
        for_each = deployment_config.value.strategy == "blue_green" ? [deployment_config.value] : []
        content {
          termination_wait_in_seconds          = blue_green_update_policy.value.termination_wait_seconds
          maximum_execution_timeout_in_seconds = blue_green_update_policy.value.maximum_execution_timeout_seconds
          traffic_routing_configuration {
            type                     = "ALL_AT_ONCE"
            wait_interval_in_seconds = blue_green_update_policy.value.wait_seconds
          }
        }
      }
      dynamic "rolling_update_policy" {
        for_each = deployment_config.value.strategy == "rolling" ? [deployment_config.value] : []
        content {
          wait_interval_in_seconds             = rolling_update_policy.value.wait_seconds
          maximum_execution_timeout_in_seconds = rolling_update_policy.value.maximum_execution_timeout_seconds
          maximum_batch_size {
            type  = "INSTANCE_COUNT"
            value = rolling_update_policy.value.rolling_batch_size
          }
        }
      }
      dynamic "auto_rollback_configuration" {
        for_each = length(deployment_config.value.rollback_alarm_names) > 0 ? [deployment_config.value.rollback_alarm_names] : []
        content {
          dynamic "alarms" {
            for_each = auto_rollback_configuration.value
            content {
              alarm_name = alarms.value
            }
          }
        }
      }
    }
  }

  depends_on = [aws_cloudwatch_log_group.this]
}

# -----------------------------------------------------------------------------
# Autoscaling (optional): target tracking on invocations per instance
# -----------------------------------------------------------------------------

# SageMaker refuses an update that changes the instance type of a variant registered for
# autoscaling. A new instance type replaces this record, and with it the scalable target and
# its policy: Terraform deregisters them before it updates the endpoint (a dependent's destroy
# precedes its dependency's update) and registers them again afterwards.
resource "terraform_data" "autoscaled_instance_type" {
  count = var.autoscaling_enabled && var.endpoint_enabled ? 1 : 0
  input = var.instance_type
}

resource "aws_appautoscaling_target" "this" {
  count = var.autoscaling_enabled && var.endpoint_enabled ? 1 : 0

  service_namespace  = "sagemaker"
  resource_id        = "endpoint/${aws_sagemaker_endpoint.this[0].name}/variant/${local.variant_name}"
  scalable_dimension = "sagemaker:variant:DesiredInstanceCount"
  min_capacity       = var.autoscaling.min_capacity
  max_capacity       = var.autoscaling.max_capacity
  tags               = var.tags

  lifecycle {
    replace_triggered_by = [terraform_data.autoscaled_instance_type[count.index]]

    precondition {
      condition     = var.autoscaling.min_capacity <= var.instance_count && var.instance_count <= var.autoscaling.max_capacity
      error_message = "instance_count (${var.instance_count}) must lie within autoscaling min_capacity (${var.autoscaling.min_capacity}) and max_capacity (${var.autoscaling.max_capacity})."
    }
  }
}

resource "aws_appautoscaling_policy" "this" {
  count = length(aws_appautoscaling_target.this)

  name               = "${var.name}-invocations-per-instance"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  resource_id        = aws_appautoscaling_target.this[0].resource_id
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension

  lifecycle {
    # Deregistering the target deletes its policies: a new target needs the policy again.
    replace_triggered_by = [terraform_data.autoscaled_instance_type[count.index]]
  }

  target_tracking_scaling_policy_configuration {
    target_value       = var.autoscaling.target_invocations_per_instance
    scale_in_cooldown  = var.autoscaling.scale_in_cooldown
    scale_out_cooldown = var.autoscaling.scale_out_cooldown

    predefined_metric_specification {
      predefined_metric_type = "SageMakerVariantInvocationsPerInstance"
    }
  }
}
