locals {
  # SigV4 signing by curl itself (7.75+); the session token header is for temporary credentials.
  curl_auth = var.url_authorization_type == "AWS_IAM" ? join(" ", [
    "--aws-sigv4 \"aws:amz:${local.region}:lambda\"",
    "--user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\"",
    "-H \"x-amz-security-token: $AWS_SESSION_TOKEN\"",
  ]) : null
  curl_request = "-H 'content-type: application/json' -d '[\"What is the capital of France?\"]'"
  curl_commands = {
    for name, function in module.functions :
    name => join(" ", compact(["curl -sS", local.curl_auth, local.curl_request, function.function_url]))
  }
}

# -----------------------------------------------------------------------------
# URLs and how to call them
# -----------------------------------------------------------------------------

output "chat_url" {
  description = "URL of the chat function."
  value       = module.functions["chat"].function_url
}

output "qa_url" {
  description = "URL of the document QA function."
  value       = module.functions["qa"].function_url
}

output "openai_base_url" {
  description = "OpenAI-compatible base URL of the chat function (POST chat/completions, GET models): the base_url of the openai SDK or LangChain's ChatOpenAI. Signed with SigV4 when the URL uses AWS_IAM (docs/api.md)."
  value       = "${trimsuffix(module.functions["chat"].function_url, "/")}/v1"
}

output "endpoint_openai_base_url" {
  description = "The SageMaker endpoint's own OpenAI-compatible base URL: the bare model, for callers with sagemaker:CallWithBearerToken and bearer tokens of at most 12 hours; no memory, keys or metering (README, OpenAI-compatible API)."
  value       = "https://runtime.sagemaker.${local.region}.${data.aws_partition.current.dns_suffix}/endpoints/${local.endpoint_name}/openai/v1"
}

output "url_caller_policy_json" {
  description = "IAM policy document (JSON) to attach to the users or roles that call the two URLs: lambda:InvokeFunctionUrl and lambda:InvokeFunction on the aliases the URLs serve, the latter only through a Function URL (lambda:InvokedViaFunctionUrl). Null with url_authorization_type = NONE, where anyone may call."
  value       = var.url_authorization_type == "AWS_IAM" ? data.aws_iam_policy_document.url_callers.json : null
}

output "url_authorization_type" {
  description = "Authorization of both URLs: AWS_IAM (SigV4-signed requests) or NONE (public)."
  value       = var.url_authorization_type
}

output "chat_curl" {
  description = "Ready-to-paste curl command that asks the chat function a question (signs with the AWS_* credentials of your shell when the URL uses AWS_IAM)."
  value       = local.curl_commands["chat"]
}

output "qa_curl" {
  description = "Ready-to-paste curl command for the QA function (signs with the AWS_* credentials of your shell when the URL uses AWS_IAM)."
  value       = local.curl_commands["qa"]
}

# -----------------------------------------------------------------------------
# Model endpoint
# -----------------------------------------------------------------------------

output "endpoint_name" {
  description = "Name of the SageMaker endpoint the functions call (ENDPOINT_NAME): the created one, or existing_endpoint_name. While endpoint_enabled is false it names the paused endpoint."
  value       = local.endpoint_name
}

output "endpoint_arn" {
  description = "ARN of that endpoint; the only endpoint the functions may invoke."
  value       = local.endpoint_arn
}

output "endpoint_enabled" {
  description = "Whether the endpoint runs; false while it is paused (the functions answer 503 model_paused)."
  value       = var.endpoint_enabled
}

output "serving_engine" {
  description = "Serving container of the created endpoint (tgi or vllm); null with existing_endpoint_name."
  value       = local.creates_endpoint ? var.serving_engine : null
}

output "model_name" {
  description = "Name of the SageMaker model behind the endpoint; null while paused or with existing_endpoint_name."
  value       = try(module.llm[0].model_name, null)
}

output "image_uri" {
  description = "Container image the created endpoint runs (also while paused); null with existing_endpoint_name."
  value       = try(module.llm[0].image_uri, null)
}

output "max_input_tokens" {
  description = "Prompt token limit shared by TGI (MAX_INPUT_TOKENS) and the functions' history trimming."
  value       = local.max_input_tokens
}

output "sagemaker_role_arn" {
  description = "ARN of the endpoint's SageMaker execution role; null with existing_endpoint_name."
  value       = try(module.llm[0].role_arn, null)
}

# -----------------------------------------------------------------------------
# Functions
# -----------------------------------------------------------------------------

output "chat_function_name" {
  description = "Name of the chat Lambda function."
  value       = module.functions["chat"].function_name
}

output "qa_function_name" {
  description = "Name of the document QA Lambda function."
  value       = module.functions["qa"].function_name
}

output "chat_function_arn" {
  description = "ARN of the chat function, for lambda:InvokeFunctionUrl grants to callers."
  value       = module.functions["chat"].function_arn
}

output "qa_function_arn" {
  description = "ARN of the QA function, for lambda:InvokeFunctionUrl grants to callers."
  value       = module.functions["qa"].function_arn
}

output "chat_alias_arn" {
  description = "ARN of the alias the chat URL serves (the latest published version), for lambda:InvokeFunctionUrl and lambda:InvokeFunction grants to callers."
  value       = module.functions["chat"].alias_arn
}

output "qa_alias_arn" {
  description = "ARN of the alias the QA URL serves (the latest published version), for lambda:InvokeFunctionUrl and lambda:InvokeFunction grants to callers."
  value       = module.functions["qa"].alias_arn
}

output "chat_role_name" {
  description = "Name of the chat function's execution role."
  value       = module.functions["chat"].role_name
}

output "qa_role_name" {
  description = "Name of the QA function's execution role."
  value       = module.functions["qa"].role_name
}

output "layer_arn" {
  description = "ARN of the shared dependency layer version."
  value       = aws_lambda_layer_version.deps.arn
}

# -----------------------------------------------------------------------------
# Chat history
# -----------------------------------------------------------------------------

output "chat_history_table_name" {
  description = "Name of the DynamoDB chat history table; null when chat_history_enabled is false."
  value       = local.chat_history_table_name
}

output "chat_history_table_arn" {
  description = "ARN of the DynamoDB chat history table; null when chat_history_enabled is false."
  value       = local.chat_history_table_arn
}

output "adapter_layer_arn" {
  description = "The Lambda Web Adapter layer version both functions run (their URLs stream); null with response_streaming = false."
  value       = module.functions["chat"].adapter_layer_arn
}

output "dashboard_url" {
  description = "Console URL of the stack's CloudWatch dashboard; null when dashboard_enabled is false."
  value       = var.dashboard_enabled ? local.dashboard_url : null
}

output "alarm_arns" {
  description = "ARNs of the CloudWatch alarms, grouped: chat and qa (url-5xx, errors, throttles, duration), endpoint (invocation-5xx, model-latency, utilization), history (throttles); empty groups when alarms_enabled is false or the resource is not created here."
  value       = local.alarm_arns
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the metrics the functions log as EMF lines (requests, errors by code, latency, tokens, cut answers...)."
  value       = local.metrics_namespace
}

output "api_keys_table_name" {
  description = "DynamoDB table of the API keys (hashes) and their daily usage, for `python -m tools.api_keys --table`; null when api_keys_enabled is false."
  value       = local.api_keys_table_name
}

output "jwt_issuer" {
  description = "Issuer whose tokens the functions accept (the created user pool's with create_cognito_user_pool); null when tokens are off."
  value       = local.jwt_issuer == "" ? null : local.jwt_issuer
}

output "cognito_user_pool_id" {
  description = "ID of the Cognito user pool the stack created; null when create_cognito_user_pool is false."
  value       = try(aws_cognito_user_pool.this[0].id, null)
}

output "cognito_app_client_id" {
  description = "ID of the Cognito user pool's public app client (no secret), to sign in with; null when create_cognito_user_pool is false."
  value       = try(aws_cognito_user_pool_client.this[0].id, null)
}
