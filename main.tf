data "aws_partition" "current" {
  lifecycle {
    precondition {
      condition     = var.url_authorization_type != "NONE" || length(var.qa_document_buckets) == 0 || var.qa_public_document_reading
      error_message = "url_authorization_type = \"NONE\" makes the QA URL public, and qa_document_buckets lets it read every object in ${join(", ", var.qa_document_buckets)}: anyone on the internet could have it quote any of them. Use AWS_IAM, empty qa_document_buckets, or accept that these buckets are public by setting qa_public_document_reading = true."
    }
  }
}
data "aws_caller_identity" "current" {}

data "aws_region" "current" {
  lifecycle {
    # Checks across variables; a validation block may name only its own variable before
    # Terraform 1.9, and these must fail at plan time, before anything is created.
    precondition {
      condition     = var.max_new_tokens < var.max_total_tokens
      error_message = "max_new_tokens (${var.max_new_tokens}) must be below max_total_tokens (${var.max_total_tokens}): the prompt gets max_total_tokens - max_new_tokens tokens and needs at least one."
    }
    precondition {
      condition     = var.max_input_tokens == null || try(var.max_input_tokens < var.max_total_tokens, false)
      error_message = "max_input_tokens (${coalesce(var.max_input_tokens, 0)}) must be below max_total_tokens (${var.max_total_tokens}): the difference is the room left for generated tokens."
    }
    precondition {
      condition     = var.existing_endpoint_name == null || length(local.endpoint_only_settings) == 0
      error_message = "existing_endpoint_name calls an endpoint this stack does not create, so these settings of the endpoint it would create have no effect; remove them: ${join(", ", local.endpoint_only_settings)}."
    }
  }
}

locals {
  # `id` is the region name in provider 5.x and 6.x; `name` is deprecated in 6.x.
  region = data.aws_region.current.id

  # The container's prompt limit is its own setting, so that a generation setting of the
  # functions (max_new_tokens, temperature, top_p) never changes the model or its endpoint
  # configuration (a GPU redeploy); the functions budget prompts to what both allow.
  container_max_input_tokens = coalesce(var.max_input_tokens, var.max_total_tokens - 1)
  max_input_tokens           = min(coalesce(var.max_input_tokens, var.max_total_tokens - 1), var.max_total_tokens - var.max_new_tokens)

  packages = {
    chat  = coalesce(var.chat_package_path, "${path.module}/build/chat.zip")
    qa    = coalesce(var.qa_package_path, "${path.module}/build/qa.zip")
    layer = coalesce(var.layer_package_path, "${path.module}/build/layer.zip")
  }

  # The endpoint the functions call: one this stack creates (module.llm), or an existing one.
  # Its name and ARN are known while it is paused too, so the functions and their grant stay.
  creates_endpoint = var.existing_endpoint_name == null
  endpoint_name    = local.creates_endpoint ? var.name : var.existing_endpoint_name
  # SageMaker keeps endpoint names as given but lower-cases them in ARNs.
  endpoint_arn = format(
    "arn:%s:sagemaker:%s:%s:endpoint/%s",
    data.aws_partition.current.partition, local.region, data.aws_caller_identity.current.account_id,
    lower(local.endpoint_name),
  )
  # Settings only the created endpoint uses, named when existing_endpoint_name makes them moot.
  endpoint_only_settings = compact([
    var.serving_engine != "tgi" ? "serving_engine" : "",
    var.model_revision != null ? "model_revision" : "",
    nonsensitive(var.hf_token != null) ? "hf_token" : "",
    var.image_uri != null ? "image_uri" : "",
    var.image_tag != null ? "image_tag" : "",
    length(var.container_env) > 0 ? "container_env" : "",
    var.max_batch_prefill_tokens != null ? "max_batch_prefill_tokens" : "",
    var.endpoint_kms_key_arn != null ? "endpoint_kms_key_arn" : "",
    var.deployment_config != null ? "deployment_config" : "",
    var.autoscaling_enabled ? "autoscaling_enabled" : "",
    !var.endpoint_enabled ? "endpoint_enabled = false (pause the endpoint where it is managed)" : "",
  ])

  # Settings both functions read; values are strings because Lambda's environment is.
  common_environment = {
    ENDPOINT_NAME = local.endpoint_name
    # The model's Hub id, which the chat URL's OpenAI route lists in /v1/models.
    MODEL_ID = var.model_id
    # false: the functions answer 503 model_paused without calling SageMaker.
    ENDPOINT_ENABLED     = tostring(var.endpoint_enabled)
    MAX_INPUT_TOKENS     = tostring(local.max_input_tokens)
    MAX_NEW_TOKENS       = tostring(var.max_new_tokens)
    TEMPERATURE          = tostring(var.temperature)
    TOP_P                = tostring(var.top_p)
    POWERTOOLS_LOG_LEVEL = var.log_level
    LOG_PROMPTS          = tostring(var.log_prompts)
    MAX_QUESTION_CHARS   = tostring(var.max_question_chars)
    # The EMF metrics' namespace (llm_app.metrics), and X-Ray subsegments (llm_app.tracing).
    POWERTOOLS_METRICS_NAMESPACE = local.metrics_namespace
    TRACING_ENABLED              = tostring(var.tracing_mode == "Active")
  }

  # Streaming (response_streaming): AWS's Lambda Web Adapter runs each package's start script,
  # which serves the same functions over HTTP; SnapStart's hooks become HTTP calls the adapter
  # makes to it before the snapshot and after a restore. The functions' code names these.
  adapter_start_script = "run.sh"
  # Exactly what the code calls (tests/terraform/test_apply.py records the calls). Streaming,
  # a request that asks for a stream reads the model's (InvokeEndpointWithResponseStream, an
  # IAM action of its own), while JSON requests and QA's map and refine steps read whole
  # answers (InvokeEndpoint).
  model_actions = var.response_streaming ? [
    "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream",
  ] : ["sagemaker:InvokeEndpoint"]
  adapter_environment = {
    AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH = "/_lwa/before-checkpoint"
    AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH     = "/_lwa/after-restore"
  }

  # The QA function reads documents from these buckets' objects, and nothing else in S3.
  qa_document_statements = concat(
    length(var.qa_document_buckets) > 0 ? [{
      sid       = "ReadQaDocuments"
      actions   = ["s3:GetObject"]
      resources = [for bucket in var.qa_document_buckets : "arn:${data.aws_partition.current.partition}:s3:::${bucket}/*"]
    }] : [],
    length(var.qa_document_kms_key_arns) > 0 ? [{
      sid       = "DecryptQaDocuments"
      actions   = ["kms:Decrypt"]
      resources = var.qa_document_kms_key_arns
    }] : [],
  )

  chat_history_table_name = var.chat_history_enabled ? aws_dynamodb_table.chat_history[0].name : null
  chat_history_table_arn  = var.chat_history_enabled ? aws_dynamodb_table.chat_history[0].arn : null
}

# -----------------------------------------------------------------------------
# Model endpoint
# -----------------------------------------------------------------------------

module "llm" {
  source = "./modules/sagemaker-tgi"
  count  = local.creates_endpoint ? 1 : 0

  name                                   = var.name
  serving_engine                         = var.serving_engine
  endpoint_enabled                       = var.endpoint_enabled
  model_id                               = var.model_id
  model_revision                         = var.model_revision
  hf_token                               = var.hf_token
  instance_type                          = var.instance_type
  instance_count                         = var.instance_count
  image_uri                              = var.image_uri
  image_tag                              = var.image_tag
  container_env                          = var.container_env
  max_input_tokens                       = min(local.container_max_input_tokens, var.max_total_tokens - 1)
  max_total_tokens                       = var.max_total_tokens
  max_batch_prefill_tokens               = var.max_batch_prefill_tokens
  container_startup_health_check_timeout = var.container_startup_health_check_timeout
  kms_key_arn                            = var.endpoint_kms_key_arn
  autoscaling_enabled                    = var.autoscaling_enabled
  autoscaling                            = var.autoscaling
  deployment_config                      = var.deployment_config
  log_retention_in_days                  = var.log_retention_in_days
  log_kms_key_arn                        = var.log_kms_key_arn
  tags                                   = var.tags

  alarms_enabled = var.alarms_enabled
  alarm_actions  = var.alarm_actions
  alarm_thresholds = {
    period_seconds        = var.alarm_thresholds.period_seconds
    invocation_5xx_errors = var.alarm_thresholds.endpoint_5xx_errors
    model_latency_p90_ms  = var.alarm_thresholds.model_latency_p90_ms
    utilization_percent   = var.alarm_thresholds.endpoint_utilization_percent
  }
}

# The endpoint module was a single block before existing_endpoint_name; this keeps it in place.
moved {
  from = module.llm
  to   = module.llm[0]
}

# -----------------------------------------------------------------------------
# Shared dependency layer (LangChain, Powertools...), built for x86_64 / Python 3.12
# -----------------------------------------------------------------------------

resource "aws_lambda_layer_version" "deps" {
  layer_name               = "${var.name}-deps"
  description              = "Python dependencies of the ${var.name} chat and QA functions"
  filename                 = local.packages.layer
  source_code_hash         = filebase64sha256(local.packages.layer)
  compatible_runtimes      = ["python3.12"]
  compatible_architectures = ["x86_64"]
}

# -----------------------------------------------------------------------------
# Chat history (DynamoDB): one item per turn, expired by TTL
# -----------------------------------------------------------------------------

resource "aws_dynamodb_table" "chat_history" {
  #checkov:skip=CKV_AWS_28:Point-in-time recovery is a variable, off by default because it keeps deleted conversations restorable for 35 days.
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key by default; chat_history_kms_key_arn selects a customer managed key.
  count = var.chat_history_enabled ? 1 : 0

  name                        = "${var.name}-chat-history"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "session_id"
  range_key                   = "turn_id"
  deletion_protection_enabled = var.chat_history_deletion_protection
  tags                        = var.tags

  attribute {
    name = "session_id"
    type = "S"
  }

  attribute {
    name = "turn_id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.chat_history_kms_key_arn
  }

  point_in_time_recovery {
    enabled = var.chat_history_point_in_time_recovery
  }
}

# -----------------------------------------------------------------------------
# Who may call the URLs
# -----------------------------------------------------------------------------

# What a caller needs for the two AWS_IAM URLs, and nothing more: Function URLs check
# lambda:InvokeFunctionUrl and (since October 2025) lambda:InvokeFunction. The condition keeps
# the second from allowing the Invoke API itself, where a hand-made event could name any caller
# in requestContext.authorizer.iam and reach that caller's conversations.
data "aws_iam_policy_document" "url_callers" {
  statement {
    sid       = "CallFunctionUrls"
    actions   = ["lambda:InvokeFunctionUrl"]
    resources = [for function in module.functions : function.alias_arn]
    condition {
      test     = "StringEquals"
      variable = "lambda:FunctionUrlAuthType"
      values   = ["AWS_IAM"]
    }
  }

  statement {
    sid       = "InvokeThroughFunctionUrlsOnly"
    actions   = ["lambda:InvokeFunction"]
    resources = [for function in module.functions : function.alias_arn]
    condition {
      test     = "Bool"
      variable = "lambda:InvokedViaFunctionUrl"
      values   = ["true"]
    }
  }
}

# -----------------------------------------------------------------------------
# Functions behind URLs
# -----------------------------------------------------------------------------

# What differs between the two functions; everything else they share.
locals {
  functions = {
    chat = {
      description = "Chat with the ${var.name} model endpoint"
      handler     = "chat.handler.handler"
      package     = local.packages.chat
      environment = {
        SYSTEM_PROMPT           = var.system_prompt
        SYSTEM_PROMPT_PLACEMENT = var.system_prompt_placement
        # Empty when history is off: the function then answers statelessly and says so.
        HISTORY_TABLE_NAME = var.chat_history_enabled ? aws_dynamodb_table.chat_history[0].name : ""
        HISTORY_TTL_DAYS   = tostring(var.chat_history_ttl_days)
        HISTORY_MAX_TURNS  = tostring(var.chat_history_max_turns)
        # AWS_IAM: sessions belong to the signed caller; NONE: only ids the function issued.
        URL_AUTHORIZATION_TYPE = var.url_authorization_type
        # caller: account + userId; role: account + an assumed role's unique id.
        CHAT_SESSION_SCOPE = var.chat_session_scope
      }
      # Read a session (Query), save a turn (PutItem), forget a session (Query + DeleteItem).
      policy_statements = var.chat_history_enabled ? [{
        sid       = "ChatHistoryItems"
        actions   = ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"]
        resources = [local.chat_history_table_arn]
      }] : []
    }
    qa = {
      description = "Answer questions about a document with the ${var.name} model endpoint"
      handler     = "qa.handler.handler"
      package     = local.packages.qa
      environment = {
        QA_DOCUMENT_BUCKETS   = join(",", var.qa_document_buckets)
        QA_MAX_DOCUMENT_BYTES = tostring(var.qa_max_document_bytes)
        QA_MAX_CHUNKS         = tostring(var.qa_max_chunks)
        QA_MAP_CONCURRENCY    = tostring(var.qa_map_concurrency)
      }
      policy_statements = local.qa_document_statements
    }
  }
}

module "functions" {
  source   = "./modules/lambda-url"
  for_each = local.functions

  function_name                  = "${var.name}-${each.key}"
  description                    = each.value.description
  handler                        = var.response_streaming ? local.adapter_start_script : each.value.handler
  runtime                        = "python3.12"
  architecture                   = "x86_64"
  filename                       = each.value.package
  layers                         = [aws_lambda_layer_version.deps.arn]
  memory_size                    = var.function_memory_size
  timeout                        = var.function_timeout
  reserved_concurrent_executions = var.function_reserved_concurrency
  snap_start                     = var.snap_start
  wait_for_published_version     = var.wait_for_published_version
  tracing_mode                   = var.tracing_mode
  authorization_type             = var.url_authorization_type
  cors                           = var.url_cors
  response_streaming             = var.response_streaming
  adapter_layer_arn              = var.adapter_layer_arn
  adapter_environment            = local.adapter_environment
  log_retention_in_days          = var.log_retention_in_days
  log_kms_key_arn                = var.log_kms_key_arn
  tags                           = var.tags

  environment_variables = merge(local.common_environment, each.value.environment, local.auth_environment, {
    POWERTOOLS_SERVICE_NAME = each.key
  })
  policy_statements = concat([{
    sid       = "InvokeModelEndpoint"
    actions   = local.model_actions
    resources = [local.endpoint_arn]
  }], each.value.policy_statements, local.auth_policy_statements)

  alarms_enabled = var.alarms_enabled
  alarm_actions  = var.alarm_actions
  alarm_thresholds = {
    period_seconds              = var.alarm_thresholds.period_seconds
    url_5xx_count               = var.alarm_thresholds.url_5xx_count
    errors                      = var.alarm_thresholds.function_errors
    throttles                   = var.alarm_thresholds.function_throttles
    duration_percent_of_timeout = var.alarm_thresholds.duration_percent_of_timeout
  }
}

# The functions were two module blocks before; these keep existing deployments in place.
moved {
  from = module.chat
  to   = module.functions["chat"]
}

moved {
  from = module.qa
  to   = module.functions["qa"]
}
