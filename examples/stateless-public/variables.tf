variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "langchain-tgi-demo"
}

variable "region" {
  description = "AWS region to deploy to; null to take it from AWS_REGION or the AWS profile."
  type        = string
  default     = null
}

variable "allowed_origins" {
  description = "Web origins allowed to call the URLs from a browser."
  type        = list(string)
  default     = ["https://example.com"]
}
