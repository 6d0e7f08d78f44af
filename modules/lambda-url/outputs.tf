output "function_url" {
  description = "HTTPS URL of the function (https://<id>.lambda-url.<region>.on.aws/)."
  value       = aws_lambda_function_url.this.function_url
}

output "authorization_type" {
  description = "Authorization type of the URL: AWS_IAM (SigV4-signed requests) or NONE (public)."
  value       = aws_lambda_function_url.this.authorization_type
}

output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Unqualified ARN of the function. Grant URL callers lambda:InvokeFunctionUrl on alias_arn: the URL is the alias's."
  value       = aws_lambda_function.this.arn
}

output "alias_arn" {
  description = "ARN of the alias the URL serves (function ARN:alias), for lambda:InvokeFunctionUrl and lambda:InvokeFunction grants to callers."
  value       = aws_lambda_alias.this.arn
}

output "alias_name" {
  description = "Name of the alias the URL serves; the Function URL's qualifier."
  value       = aws_lambda_alias.this.name
}

output "version" {
  description = "The published version the alias points at (and SnapStart snapshots when snap_start is on)."
  value       = aws_lambda_function.this.version
}

output "snap_start" {
  description = "Whether SnapStart is on for the published versions."
  value       = var.snap_start
}

output "invoke_mode" {
  description = "How the URL returns responses: RESPONSE_STREAM (response_streaming, through the Lambda Web Adapter) or BUFFERED."
  value       = aws_lambda_function_url.this.invoke_mode
}

output "adapter_layer_arn" {
  description = "The Lambda Web Adapter layer version the function runs; null without response_streaming."
  value       = local.adapter_layer_arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the function's execution role, to attach further policies."
  value       = aws_iam_role.this.name
}

output "log_group_name" {
  description = "CloudWatch log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

output "alarm_arns" {
  description = "ARNs of the function's CloudWatch alarms by kind (url-5xx, errors, throttles, duration); empty when alarms_enabled is false."
  value       = { for kind, alarm in aws_cloudwatch_metric_alarm.this : kind => alarm.arn }
}
