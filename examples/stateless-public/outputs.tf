output "chat_url" {
  description = "Public URL of the chat function."
  value       = module.langchain_tgi.chat_url
}

output "qa_url" {
  description = "Public URL of the document QA function."
  value       = module.langchain_tgi.qa_url
}

output "chat_curl" {
  description = "Unsigned curl command that asks the chat function a question."
  value       = module.langchain_tgi.chat_curl
}

output "chat_history_table_name" {
  description = "Always null here: history is off."
  value       = module.langchain_tgi.chat_history_table_name
}
