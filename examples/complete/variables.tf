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

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default = {
    project     = "langchain-tgi-lambda"
    environment = "example"
  }
}

variable "model_revision" {
  description = "Commit of the model on the Hugging Face Hub to pin; null for the default branch."
  type        = string
  default     = null
}

variable "protect_chat_history" {
  description = "Whether the chat history table refuses deletion; set false before `terraform destroy`."
  type        = bool
  default     = true
}

variable "documents_force_destroy" {
  description = "Whether `terraform destroy` deletes the QA documents bucket with every object version in it."
  type        = bool
  default     = false
}

variable "adapter_layer_arn" {
  description = "The Lambda Web Adapter layer version to run where the module knows none (GovCloud, me-south-1, mx-central-1), or a copy in your account; null for AWS's layer of the region."
  type        = string
  default     = null
}
