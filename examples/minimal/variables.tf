variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "langchain-tgi"
}

variable "region" {
  description = "AWS region to deploy to; null to take it from AWS_REGION or the AWS profile."
  type        = string
  default     = null
}
