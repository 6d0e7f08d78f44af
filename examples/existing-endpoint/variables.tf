variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "langchain-shared"
}

variable "endpoint_name" {
  description = "Name of the existing SageMaker endpoint the functions call."
  type        = string
}

variable "max_total_tokens" {
  description = "Prompt plus answer tokens the endpoint allows per request (its context budget)."
  type        = number
  default     = 2048
}

variable "max_new_tokens" {
  description = "Most tokens generated per answer; the prompt gets the rest of max_total_tokens."
  type        = number
  default     = 700
}
