data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  source_code_hash = var.source_code_hash != null ? var.source_code_hash : filebase64sha256(var.filename)
  public           = var.authorization_type == "NONE"
  # SnapStart for Python needs 3.12 or later (python3.10 and 3.11 have none).
  snap_start_runtimes = ["python3.12", "python3.13"]

  # The regions where AWS's Lambda guide ("Creating and managing Lambda function URLs", read
  # 2026-12-07) says Function URLs do not exist; each maps to a nearby region that has them.
  nearby_function_url_regions = {
    "ap-east-2"      = "ap-east-1"
    "ap-south-2"     = "ap-south-1"
    "ap-southeast-4" = "ap-southeast-2"
    "ap-southeast-5" = "ap-southeast-1"
    "ap-southeast-6" = "ap-southeast-2"
    "ap-southeast-7" = "ap-southeast-1"
    "ca-west-1"      = "ca-central-1"
    "eu-central-2"   = "eu-central-1"
    "eu-south-2"     = "eu-west-3"
    "il-central-1"   = "eu-central-1"
    "me-central-1"   = "eu-central-1"
  }
  without_function_urls = contains(keys(local.nearby_function_url_regions), local.region)

  # Response streaming: the managed Python runtime cannot stream, so the function runs behind
  # AWS's Lambda Web Adapter. Layer versions are numbered per region, so the table
  # (web-adapter-layers.json) lists only the regions where LWA's release pipeline shows that
  # its version exists; elsewhere adapter_layer_arn must name one.
  # `id` is the region name in provider 5.x and 6.x alike.
  region         = data.aws_region.current.id
  adapter_layers = jsondecode(file("${path.module}/web-adapter-layers.json"))
  adapter_account = (
    var.architecture == "arm64" && contains(local.adapter_layers.x86_64_only, local.region)
  ) ? null : lookup(local.adapter_layers.accounts, local.region, null)
  published_adapter_layer_arn = local.adapter_account == null ? null : format(
    "arn:%s:lambda:%s:%s:layer:%s:%d",
    data.aws_partition.current.partition, local.region, local.adapter_account,
    local.adapter_layers.layer_names[var.architecture], local.adapter_layers.layer_version,
  )
  adapter_layer_arn = var.response_streaming ? (
    var.adapter_layer_arn != null ? var.adapter_layer_arn : local.published_adapter_layer_arn
  ) : null
  # The adapter's layer comes last: /opt/bootstrap is its file, and no earlier layer may shadow it.
  layers = concat(var.layers, local.adapter_layer_arn == null ? [] : [local.adapter_layer_arn])
  # Lambda runs /opt/bootstrap (the adapter) instead of the runtime; it starts the handler,
  # the package's start script, and forwards each URL event to it as HTTP, streaming the answer.
  adapter_environment = var.response_streaming ? merge(var.adapter_environment, {
    AWS_LAMBDA_EXEC_WRAPPER = "/opt/bootstrap"
    AWS_LWA_INVOKE_MODE     = "response_stream"
  }) : {}
  environment = merge(var.environment_variables, local.adapter_environment)

  # Lambda limits the environment to 4 KB (of 1,024 bytes), "for all environment variables
  # associated with the function, in aggregate" (Lambda quotas), and measures the variables as
  # one JSON object, keys and values in UTF-8 ("String measured: {...}" in its refusal).
  # length() counts characters, so bytes are base64's length less its padding; jsonencode
  # escapes <, > and & where Lambda's JSON does not, so those are put back first.
  environment_json = replace(replace(replace(jsonencode(local.environment),
  "\\u003c", "<"), "\\u003e", ">"), "\\u0026", "&")
  environment_base64 = base64encode(local.environment_json)
  environment_bytes  = length(local.environment_base64) / 4 * 3 - length(regexall("=", local.environment_base64))
  environment_limit  = 4096
  # The three largest variables (name and value bytes), named when the whole is too large.
  variable_base64 = { for name, value in local.environment : name => base64encode("${name}${value}") }
  variable_sizes = sort([for name, encoded in local.variable_base64 :
    format("%08d %s", length(encoded) / 4 * 3 - length(regexall("=", encoded)), name)
  ])
  largest_variables = [for entry in slice(reverse(local.variable_sizes), 0, min(3, length(local.variable_sizes))) :
    format("%s (%d bytes)", split(" ", entry)[1], tonumber(split(" ", entry)[0]))
  ]
  invoke_mode = var.response_streaming ? "RESPONSE_STREAM" : "BUFFERED"
}

# -----------------------------------------------------------------------------
# Execution role: its own log group, plus the caller's statements
# -----------------------------------------------------------------------------

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssume"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.function_name
  description          = "Execution role of the ${var.function_name} Lambda function"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  permissions_boundary = var.role_permissions_boundary
  tags                 = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid = "WriteOwnLogs"
    # The log group is created below, so no logs:CreateLogGroup.
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []
    content {
      sid = "XRayTraces"
      # X-Ray's write actions have no resource-level permissions.
      actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "DecryptEnvironment"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.policy_statements
    content {
      sid       = statement.value.sid
      effect    = statement.value.effect
      actions   = statement.value.actions
      resources = statement.value.resources

      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "function"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.execution.json
}

# -----------------------------------------------------------------------------
# Log group: created before the function so retention and tags apply from the first line
# -----------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest by default; a CMK is optional (log_kms_key_arn).
  #checkov:skip=CKV_AWS_338:Retention is a variable; the short default limits how long request logs are kept.
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

# -----------------------------------------------------------------------------
# Function
# -----------------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously through its URL; the caller gets the error, a DLQ would never receive anything.
  #checkov:skip=CKV_AWS_117:Calls only public AWS APIs (SageMaker runtime, DynamoDB); a VPC would add NAT cost and cold-start time for nothing.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile the project does not assume; artifacts are built reproducibly by tools.packaging.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is a variable (reserved_concurrent_executions), off by default so a small account's pool is not carved up.
  #checkov:skip=CKV_AWS_173:The environment holds no secrets; Lambda encrypts it with an AWS managed key, and kms_key_arn selects a CMK.
  function_name                  = var.function_name
  description                    = var.description
  role                           = aws_iam_role.this.arn
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  filename                       = var.filename
  source_code_hash               = local.source_code_hash
  layers                         = local.layers
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags
  # Every change publishes a version and the alias below moves to it: SnapStart snapshots
  # published versions only, and the URL serves the alias, whether SnapStart is on or off.
  publish = true

  dynamic "snap_start" {
    for_each = var.snap_start ? [1] : []
    content {
      apply_on = "PublishedVersions"
    }
  }

  dynamic "environment" {
    for_each = length(local.environment) > 0 ? [local.environment] : []
    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]

  lifecycle {
    # First, and alone when it fails: nothing else matters in a region without Function URLs.
    # Checked at plan time (the region is known then), so in the root the plan fails before
    # the model endpoint is started. (A postcondition on data.aws_region would defer the read
    # to apply in the root, and the check with it.)
    precondition {
      condition     = !local.without_function_urls
      error_message = "${var.function_name}: Lambda Function URLs do not exist in ${local.region} (AWS Lambda Developer Guide, \"Creating and managing Lambda function URLs\"), and this module serves the function through one; response_streaming = false still creates a URL. Deploy the stack in a region with Function URLs, e.g. ${lookup(local.nearby_function_url_regions, local.region, "eu-central-1")}."
    }
    precondition {
      condition     = !var.snap_start || contains(local.snap_start_runtimes, var.runtime)
      error_message = "snap_start needs a Python runtime of 3.12 or later (${join(", ", local.snap_start_runtimes)}); set snap_start = false for ${var.runtime}."
    }
    precondition {
      condition     = local.adapter_layer_arn != null || !var.response_streaming || local.without_function_urls
      error_message = "${var.function_name}: this module knows no Lambda Web Adapter layer version for ${local.region} (${var.architecture}). Layer versions are numbered per region: LWA 1.1.0 is version ${local.adapter_layers.layer_version} in the ${length(local.adapter_layers.accounts)} regions of modules/lambda-url/web-adapter-layers.json, AWS publishes none in GovCloud or me-south-1, and where its release pipeline arrived later (mx-central-1, arm64 in China) that version is not known to exist. Set adapter_layer_arn to the adapter's layer version in ${local.region} or to a copy in your account, or response_streaming = false for a buffered function."
    }
    precondition {
      condition     = local.environment_bytes <= local.environment_limit
      error_message = "${var.function_name}: the environment variables take ${local.environment_bytes} bytes, Lambda allows ${local.environment_limit} (4 KB, keys and values in UTF-8, measured as one JSON object). Largest: ${join(", ", local.largest_variables)}. Shorten them; a character outside ASCII takes 2-4 bytes (a Chinese one 3), so system_prompt's 2,000-character limit is not enough on its own."
    }
    precondition {
      condition     = length(local.layers) <= 5
      error_message = "The function would have ${length(local.layers)} layers, Lambda allows 5: with response_streaming the adapter takes one, so pass at most 4 in layers."
    }
  }
}

# With SnapStart the app's init runs when a version is published: the version stays Pending
# until its snapshot is taken, then turns Active, or Failed when the init failed. Provider 5.x
# returns at once (6.x waits on updates only), so the alias would move to a version that may
# fail. This waits for Active, and on Failed fails the apply with Lambda's reason, before the
# alias moves; a failed version is replaced on the next apply, so it is waited for again.
resource "terraform_data" "published_version" {
  count = var.snap_start && var.wait_for_published_version ? 1 : 0

  input            = aws_lambda_function.this.version
  triggers_replace = [aws_lambda_function.this.version]

  provisioner "local-exec" {
    command = <<-EOT
      aws lambda wait published-version-active --region "$REGION" --function-name "$FUNCTION" --qualifier "$VERSION" && exit 0
      echo "$FUNCTION version $VERSION is not Active, so its URL stays on the previous version:" >&2
      aws lambda get-function-configuration --region "$REGION" --function-name "$FUNCTION" --qualifier "$VERSION" \
        --query '[State, StateReasonCode, StateReason]' --output text >&2
      echo "The app's own error is in the log group /aws/lambda/$FUNCTION (docs/operations.md)." >&2
      exit 1
    EOT
    environment = {
      REGION   = local.region
      FUNCTION = aws_lambda_function.this.function_name
      VERSION  = aws_lambda_function.this.version
    }
  }
}

# The published version the URL serves. Invocations of the alias restore SnapStart snapshots
# of that version; $LATEST (unqualified) would always initialise from scratch.
resource "aws_lambda_alias" "this" {
  name             = var.alias_name
  description      = "The version the Function URL serves"
  function_name    = aws_lambda_function.this.function_name
  function_version = try(terraform_data.published_version[0].output, aws_lambda_function.this.version)
}

# -----------------------------------------------------------------------------
# Function URL
# -----------------------------------------------------------------------------

# A public URL (authorization_type = NONE) needs both statements since October 2025. They are
# created before the URL under the statement id the provider itself adds for NONE URLs, so
# that statement is owned (and removed) by Terraform instead of left behind untracked.
resource "aws_lambda_permission" "public_url" {
  #checkov:skip=CKV_AWS_301:Public access is the explicit opt-in of authorization_type = "NONE".
  count = local.public ? 1 : 0

  statement_id           = "FunctionURLAllowPublicAccess"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  qualifier              = aws_lambda_alias.this.name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "public_invoke" {
  #checkov:skip=CKV_AWS_301:Public access is the explicit opt-in of authorization_type = "NONE".
  count = local.public ? 1 : 0

  # AWS's own statement also carries `lambda:InvokedViaFunctionUrl = true`; provider 5.x cannot
  # express that condition, so anyone may call Invoke directly, which the public URL allows anyway.
  # Provider 6.29 added `invoked_via_function_url`; this module still supports 5.100
  # (docs/security.md).
  statement_id  = "FunctionURLInvokeAllowPublicAccess"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  qualifier     = aws_lambda_alias.this.name
  principal     = "*"
}

resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:authorization_type is a variable, AWS_IAM by default; NONE (a public URL) is only ever an explicit choice, as in examples/stateless-public.
  function_name      = aws_lambda_function.this.function_name
  qualifier          = aws_lambda_alias.this.name
  authorization_type = var.authorization_type
  invoke_mode        = local.invoke_mode

  dynamic "cors" {
    for_each = var.cors == null ? [] : [var.cors]
    content {
      allow_credentials = cors.value.allow_credentials
      allow_headers     = cors.value.allow_headers
      allow_methods     = cors.value.allow_methods
      allow_origins     = cors.value.allow_origins
      expose_headers    = cors.value.expose_headers
      max_age           = cors.value.max_age
    }
  }

  depends_on = [aws_lambda_permission.public_url, aws_lambda_permission.public_invoke]
}
