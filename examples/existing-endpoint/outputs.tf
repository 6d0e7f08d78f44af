output "chat_url" {
  description = "URL of the chat function."
  value       = module.langchain_tgi.chat_url
}

output "qa_url" {
  description = "URL of the document QA function."
  value       = module.langchain_tgi.qa_url
}

output "endpoint_arn" {
  description = "ARN of the existing endpoint: the only one the functions may invoke."
  value       = module.langchain_tgi.endpoint_arn
}

output "chat_curl" {
  description = "Signed curl command that asks the chat function a question."
  value       = module.langchain_tgi.chat_curl
}
