output "chat_url" {
  description = "URL of the chat function."
  value       = module.langchain_tgi.chat_url
}

output "qa_url" {
  description = "URL of the document QA function."
  value       = module.langchain_tgi.qa_url
}

output "endpoint_name" {
  description = "Name of the SageMaker endpoint."
  value       = module.langchain_tgi.endpoint_name
}

output "chat_curl" {
  description = "Signed curl command that asks the chat function a question."
  value       = module.langchain_tgi.chat_curl
}

output "qa_curl" {
  description = "Signed curl command for the QA function."
  value       = module.langchain_tgi.qa_curl
}

output "chat_history_table_name" {
  description = "Name of the chat history table."
  value       = module.langchain_tgi.chat_history_table_name
}

output "chat_history_kms_key_arn" {
  description = "ARN of the key encrypting the chat history."
  value       = aws_kms_key.history.arn
}

output "caller_policy_arn" {
  description = "ARN of the policy to attach to principals that call the URLs."
  value       = aws_iam_policy.callers.arn
}

output "documents_bucket" {
  description = "Name of the bucket of QA documents: ask about `s3://<bucket>/<key>`."
  value       = aws_s3_bucket.documents.bucket
}

output "dashboard_url" {
  description = "Console URL of the stack's CloudWatch dashboard."
  value       = module.langchain_tgi.dashboard_url
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic the alarms notify; subscribe an email address or a pager to it."
  value       = aws_sns_topic.alarms.arn
}
