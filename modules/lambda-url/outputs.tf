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
  description = "ARN of the function, e.g. for lambda:InvokeFunctionUrl permissions of callers."
  value       = aws_lambda_function.this.arn
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
