variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "langchain-tgi-demo"
}

variable "allowed_origins" {
  description = "Web origins allowed to call the URLs from a browser."
  type        = list(string)
  default     = ["https://example.com"]
}
