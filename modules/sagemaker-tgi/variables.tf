# -----------------------------------------------------------------------------
# Naming and tags
# -----------------------------------------------------------------------------

variable "name" {
  description = "Name of the endpoint, and prefix of the model, endpoint configuration, role (`<name>-sagemaker`) and log group."
  type        = string

  validation {
    # Model and endpoint-config names append "-<8 hex>" to this and SageMaker caps names at 63.
    condition     = length(var.name) <= 54 && can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", var.name))
    error_message = "name must be 1-54 characters of letters, digits and hyphens, starting and ending with a letter or digit (SageMaker's name pattern, leaving room for a 9-character suffix)."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource of the module."
  type        = map(string)
  default     = {}
  nullable    = false
}

# -----------------------------------------------------------------------------
# Model and container
# -----------------------------------------------------------------------------

variable "model_id" {
  description = "Hugging Face Hub model id the engine serves (TGI: HF_MODEL_ID; vLLM: SM_VLLM_MODEL)."
  type        = string
  default     = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$", var.model_id)) && length(var.model_id) <= 96
    error_message = "model_id must be a Hugging Face Hub repository id such as \"TinyLlama/TinyLlama-1.1B-Chat-v1.0\" (owner/name, letters, digits, '.', '_' and '-')."
  }
}

variable "model_revision" {
  description = "Hub revision (branch, tag or commit) of the model to serve (TGI: HF_MODEL_REVISION; vLLM: SM_VLLM_REVISION); null for the default branch. Pin a commit for reproducible deployments."
  type        = string
  default     = null

  validation {
    condition     = var.model_revision == null || can(regex("^[A-Za-z0-9._/-]{1,100}$", var.model_revision))
    error_message = "model_revision must be a branch, tag or commit of 1-100 characters (letters, digits, '.', '_', '/', '-'), or null."
  }
}

variable "hf_token" {
  description = "Hugging Face access token for gated or private models (HF_TOKEN). Stored in the SageMaker model definition and the Terraform state; never output. Use a read-only token."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.hf_token == null || can(regex("^\\S{8,}$", var.hf_token))
    error_message = "hf_token must be a token without whitespace (e.g. hf_...), or null."
  }
}

variable "serving_engine" {
  description = "Serving container: \"tgi\" (Hugging Face TGI DLC) or \"vllm\" (AWS's vLLM DLC). Both answer the Messages API on /invocations."
  type        = string
  default     = "tgi"
  nullable    = false

  validation {
    condition     = contains(["tgi", "vllm"], var.serving_engine)
    error_message = "serving_engine must be \"tgi\" or \"vllm\"."
  }
}

variable "endpoint_enabled" {
  description = "Whether the model, endpoint configuration and endpoint exist. false pauses the endpoint (no instance billed) and keeps the role and log group; true again restores it."
  type        = bool
  default     = true
  nullable    = false
}

variable "image_tag" {
  description = "Tag of the engine's Deep Learning Container, used when image_uri is null; null for the newest release in the SageMaker SDK's table (TGI 3.3.6: 2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04; vLLM: 0.30.0-gpu-py312-cu130-ubuntu24.04-sagemaker)."
  type        = string
  default     = null

  validation {
    condition = var.image_tag == null || anytrue([
      can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+-tgi[0-9]+\\.[0-9]+\\.[0-9]+-gpu-py3[0-9]+-cu[0-9]+-ubuntu[0-9]+\\.[0-9]+(-v[0-9.]+)?$", coalesce(var.image_tag, "-"))),
      can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+-gpu-py3[0-9]+-cu[0-9]+-ubuntu[0-9]+\\.[0-9]+-sagemaker(-v[0-9.]+)?$", coalesce(var.image_tag, "-"))),
    ])
    error_message = "image_tag must be a TGI DLC GPU tag such as \"2.7.0-tgi3.3.6-gpu-py311-cu124-ubuntu22.04\" or a vLLM DLC SageMaker tag such as \"0.30.0-gpu-py312-cu130-ubuntu24.04-sagemaker\"; use image_uri for any other image."
  }
}

variable "image_uri" {
  description = "Full ECR image URI of the serving container; overrides the region's DLC of serving_engine (e.g. a copy in your own ECR, or a region the DLC table lacks)."
  type        = string
  default     = null

  validation {
    # Every partition's ECR host: amazonaws.com, amazonaws.com.cn, amazonaws.eu, c2s.ic.gov,
    # sc2s.sgov.gov, csp.hci.ic.gov, cloud.adc-e.uk (the SDK's regions, via botocore).
    condition     = var.image_uri == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.(amazonaws\\.com(\\.cn)?|amazonaws\\.eu|c2s\\.ic\\.gov|sc2s\\.sgov\\.gov|csp\\.hci\\.ic\\.gov|cloud\\.adc-e\\.uk)/[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})$", var.image_uri))
    error_message = "image_uri must be an ECR image such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo:tag (or @sha256:digest); SageMaker pulls only from ECR here."
  }
}

variable "container_env" {
  description = "Extra environment variables for the serving container (TGI: QUANTIZE, DTYPE...; vLLM: SM_VLLM_<FLAG> for any vllm serve flag); they override the module's own keys."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.container_env) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && length(k) <= 1024]) && length(var.container_env) <= 80
    error_message = "container_env keys must be environment variable names ([A-Za-z_][A-Za-z0-9_]*), at most 80 of them."
  }
  validation {
    condition     = length(setintersection(keys(var.container_env), ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])) == 0
    error_message = "Pass the Hugging Face token through hf_token (a sensitive variable), not container_env."
  }
}

# -----------------------------------------------------------------------------
# Token limits (TinyLlama's context is 2048 tokens)
# -----------------------------------------------------------------------------

variable "max_input_tokens" {
  description = "Longest prompt TGI accepts, in tokens (MAX_INPUT_TOKENS): a container limit. Must be below max_total_tokens. Generation settings (max_new_tokens, temperature, top_p) are the functions' and never reach the container."
  type        = number
  default     = 1024
  nullable    = false

  validation {
    condition     = var.max_input_tokens >= 1 && floor(var.max_input_tokens) == var.max_input_tokens
    error_message = "max_input_tokens must be a whole number of at least 1."
  }
}

variable "max_total_tokens" {
  description = "Prompt plus generated tokens per request (MAX_TOTAL_TOKENS); at most the model's context length."
  type        = number
  default     = 2048
  nullable    = false

  validation {
    condition     = var.max_total_tokens >= 2 && floor(var.max_total_tokens) == var.max_total_tokens
    error_message = "max_total_tokens must be a whole number of at least 2."
  }
}

variable "max_batch_prefill_tokens" {
  description = "Tokens TGI prefills in one batch (MAX_BATCH_PREFILL_TOKENS); null for max_input_tokens + 50, TGI's own default. Must be at least max_input_tokens."
  type        = number
  default     = null

  validation {
    condition     = var.max_batch_prefill_tokens == null || try(var.max_batch_prefill_tokens >= 1 && floor(var.max_batch_prefill_tokens) == var.max_batch_prefill_tokens, false)
    error_message = "max_batch_prefill_tokens must be a whole number of at least 1, or null."
  }
}

# -----------------------------------------------------------------------------
# Instances
# -----------------------------------------------------------------------------

variable "instance_type" {
  description = "SageMaker instance type. GPU types set SM_NUM_GPUS from a table of GPU counts; CPU types (e.g. ml.m5.xlarge) run TGI on CPU, much slower."
  type        = string
  default     = "ml.g5.xlarge"
  nullable    = false

  validation {
    condition     = can(regex("^ml\\.[a-z][a-z0-9-]*\\.(medium|large|[0-9]*xlarge)$", var.instance_type))
    error_message = "instance_type must be a SageMaker instance type such as ml.g5.xlarge or ml.m5.xlarge."
  }
}

variable "num_gpus" {
  description = "GPUs per instance passed to the engine (TGI: SM_NUM_GPUS; vLLM: SM_VLLM_TENSOR_PARALLEL_SIZE); null to look the instance type up. Set it for GPU types the module's table does not list."
  type        = number
  default     = null

  validation {
    condition     = var.num_gpus == null || try(var.num_gpus >= 0 && var.num_gpus <= 16 && floor(var.num_gpus) == var.num_gpus, false)
    error_message = "num_gpus must be a whole number from 0 to 16, or null."
  }
}

variable "instance_count" {
  description = "Number of instances behind the endpoint (the initial count when autoscaling is on)."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 20 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number from 1 to 20."
  }
}

variable "container_startup_health_check_timeout" {
  description = "Seconds SageMaker waits for the container to pass its health check; covers downloading the weights from the Hub and TGI's warm-up."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.container_startup_health_check_timeout >= 60 && var.container_startup_health_check_timeout <= 3600
    error_message = "container_startup_health_check_timeout must be between 60 and 3600 seconds."
  }
}

variable "model_data_download_timeout" {
  description = "Seconds SageMaker allows for downloading model data to the instance."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.model_data_download_timeout >= 60 && var.model_data_download_timeout <= 3600
    error_message = "model_data_download_timeout must be between 60 and 3600 seconds."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN for the endpoint's storage volume; leave null for instance types with NVMe instance storage (g5, g6, p4d...), which SageMaker refuses it for."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

variable "role_permissions_boundary" {
  description = "ARN of a permissions boundary policy for the execution role, when your organisation requires one."
  type        = string
  default     = null

  validation {
    condition     = var.role_permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.role_permissions_boundary))
    error_message = "role_permissions_boundary must be an IAM policy ARN, or null."
  }
}

# -----------------------------------------------------------------------------
# Logs
# -----------------------------------------------------------------------------

variable "log_retention_in_days" {
  description = "Days CloudWatch keeps the endpoint's container logs."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the endpoint's log group; null for CloudWatch's default encryption. The key policy must allow the logs service."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

# -----------------------------------------------------------------------------
# Autoscaling
# -----------------------------------------------------------------------------

variable "deployment_config" {
  description = "How SageMaker rolls out an endpoint update (new model or instance type); null for SageMaker's default, blue/green all at once. strategy blue_green starts a second fleet of instance_count instances, shifts all traffic to it after wait_seconds and stops the old fleet termination_wait_seconds later: it needs instance quota for twice instance_count. rolling replaces rolling_batch_size instances at a time (waiting wait_seconds between batches): it needs quota for one extra batch. Either rolls back when one of rollback_alarm_names (CloudWatch alarms, at most 10) goes into ALARM during the update."
  type = object({
    strategy                          = optional(string, "blue_green")
    wait_seconds                      = optional(number, 0)
    termination_wait_seconds          = optional(number, 0)
    rolling_batch_size                = optional(number, 1)
    maximum_execution_timeout_seconds = optional(number)
    rollback_alarm_names              = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.deployment_config == null || try(contains(["blue_green", "rolling"], var.deployment_config.strategy), false)
    error_message = "deployment_config.strategy must be \"blue_green\" or \"rolling\"."
  }
  validation {
    condition     = var.deployment_config == null || try(var.deployment_config.wait_seconds >= 0 && var.deployment_config.wait_seconds <= 3600 && var.deployment_config.termination_wait_seconds >= 0 && var.deployment_config.termination_wait_seconds <= 3600, false)
    error_message = "deployment_config.wait_seconds and termination_wait_seconds must be from 0 to 3600 seconds."
  }
  validation {
    condition     = var.deployment_config == null || try(var.deployment_config.rolling_batch_size >= 1 && floor(var.deployment_config.rolling_batch_size) == var.deployment_config.rolling_batch_size, false)
    error_message = "deployment_config.rolling_batch_size must be a whole number of instances, at least 1."
  }
  validation {
    condition     = var.deployment_config == null || try(coalesce(var.deployment_config.maximum_execution_timeout_seconds, 600) >= 600 && coalesce(var.deployment_config.maximum_execution_timeout_seconds, 600) <= 14400, false)
    error_message = "deployment_config.maximum_execution_timeout_seconds must be from 600 to 14400 seconds, or null."
  }
  validation {
    condition     = var.deployment_config == null || try(length(var.deployment_config.rollback_alarm_names) <= 10, false)
    error_message = "deployment_config.rollback_alarm_names takes at most 10 CloudWatch alarms."
  }
}

variable "autoscaling_enabled" {
  description = "Whether to scale the instance count with Application Auto Scaling (target tracking on invocations per instance)."
  type        = bool
  default     = false
  nullable    = false
}

variable "autoscaling" {
  description = "Autoscaling settings, used when autoscaling_enabled: capacity bounds, target invocations per instance per minute, and cooldowns in seconds."
  type = object({
    min_capacity                    = optional(number, 1)
    max_capacity                    = optional(number, 2)
    target_invocations_per_instance = optional(number, 20)
    scale_in_cooldown               = optional(number, 600)
    scale_out_cooldown              = optional(number, 300)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.autoscaling.min_capacity >= 1 && var.autoscaling.max_capacity >= var.autoscaling.min_capacity && var.autoscaling.max_capacity <= 20
    error_message = "autoscaling needs 1 <= min_capacity <= max_capacity <= 20 (real-time endpoint variants cannot scale to zero)."
  }
  validation {
    condition     = var.autoscaling.target_invocations_per_instance > 0
    error_message = "autoscaling.target_invocations_per_instance must be positive."
  }
  validation {
    condition     = var.autoscaling.scale_in_cooldown >= 0 && var.autoscaling.scale_out_cooldown >= 0
    error_message = "autoscaling cooldowns must be zero or more seconds."
  }
}

# -----------------------------------------------------------------------------
# Alarms
# -----------------------------------------------------------------------------

variable "alarms_enabled" {
  description = "Whether to create CloudWatch alarms on the endpoint's variant (5xx invocations, p90 model latency, GPU or CPU utilisation); none exist while endpoint_enabled is false."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm goes to ALARM and back to OK (an SNS topic, for example); empty: the alarms only change state."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:aws[a-z-]*:", arn))])
    error_message = "alarm_actions must be ARNs (arn:aws:sns:<region>:<account>:<topic>, for example)."
  }
}

variable "alarm_thresholds" {
  description = "Thresholds of the alarms, each reached or exceeded in one period of period_seconds: invocation_5xx_errors (a count), model_latency_p90_ms, utilization_percent (per GPU on GPU instances, per vCPU on CPU ones)."
  type = object({
    period_seconds        = optional(number, 300)
    invocation_5xx_errors = optional(number, 5)
    model_latency_p90_ms  = optional(number, 30000)
    utilization_percent   = optional(number, 90)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains([60, 300, 900, 3600], var.alarm_thresholds.period_seconds)
    error_message = "alarm_thresholds.period_seconds must be 60, 300, 900 or 3600."
  }

  validation {
    condition     = var.alarm_thresholds.utilization_percent > 0 && var.alarm_thresholds.utilization_percent <= 100
    error_message = "alarm_thresholds.utilization_percent must be above 0 and at most 100."
  }
}
