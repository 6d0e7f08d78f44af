# -----------------------------------------------------------------------------
# Naming and tags
# -----------------------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource name (endpoint, functions, roles, table, layer), so several stacks can share an account and region."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name)) && !strcontains(var.name, "--")
    error_message = "name must be 3-32 characters: lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit (e.g. \"chatbot-dev\")."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource."
  type        = map(string)
  default     = {}
  nullable    = false
}

# -----------------------------------------------------------------------------
# Model endpoint
# -----------------------------------------------------------------------------

variable "serving_engine" {
  description = "Serving container of the endpoint: \"tgi\" (Hugging Face TGI DLC) or \"vllm\" (AWS's vLLM DLC, for models newer than TGI serves). Both answer the Messages API the functions send."
  type        = string
  default     = "tgi"
  nullable    = false

  validation {
    condition     = contains(["tgi", "vllm"], var.serving_engine)
    error_message = "serving_engine must be \"tgi\" or \"vllm\"."
  }
}

variable "existing_endpoint_name" {
  description = "Name of a SageMaker endpoint of this account and region for the functions to call instead of creating one; null to create it. It must accept the Messages API on /invocations (TGI >= 2.4, or a vLLM image)."
  type        = string
  default     = null

  validation {
    condition     = var.existing_endpoint_name == null || can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", coalesce(var.existing_endpoint_name, "-")))
    error_message = "existing_endpoint_name must be a SageMaker endpoint name: 1-63 letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "endpoint_enabled" {
  description = "Whether the endpoint runs. false deletes the model, endpoint configuration and endpoint (no instance billed) and keeps functions, URLs, history and roles; the functions then answer 503 model_paused. true again restores the endpoint."
  type        = bool
  default     = true
  nullable    = false
}

variable "model_id" {
  description = "Hugging Face Hub model id served by the endpoint (TGI or vLLM)."
  type        = string
  default     = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$", var.model_id)) && length(var.model_id) <= 96
    error_message = "model_id must be a Hugging Face Hub repository id such as \"TinyLlama/TinyLlama-1.1B-Chat-v1.0\" (owner/name, letters, digits, '.', '_' and '-')."
  }
}

variable "model_revision" {
  description = "Hub revision (branch, tag or commit) of the model; null for the default branch. Pin a commit for reproducible deployments."
  type        = string
  default     = null

  validation {
    condition     = var.model_revision == null || can(regex("^[A-Za-z0-9._/-]{1,100}$", var.model_revision))
    error_message = "model_revision must be a branch, tag or commit of 1-100 characters (letters, digits, '.', '_', '/', '-'), or null."
  }
}

variable "hf_token" {
  description = "Hugging Face token for gated or private models; stored in the SageMaker model and the state, never output."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.hf_token == null || can(regex("^\\S{8,}$", var.hf_token))
    error_message = "hf_token must be a token without whitespace (e.g. hf_...), or null."
  }
}

variable "instance_type" {
  description = "SageMaker instance type of the endpoint. ml.g5.xlarge (1 A10G GPU) is the TGI image's documented target; ml.m5.xlarge runs TinyLlama on CPU, cheaper but far slower (see README)."
  type        = string
  default     = "ml.g5.xlarge"
  nullable    = false

  validation {
    condition     = can(regex("^ml\\.[a-z][a-z0-9-]*\\.(medium|large|[0-9]*xlarge)$", var.instance_type))
    error_message = "instance_type must be a SageMaker instance type such as ml.g5.xlarge or ml.m5.xlarge."
  }
}

variable "instance_count" {
  description = "Instances behind the endpoint (the initial count when autoscaling is on)."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 20 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number from 1 to 20."
  }
}

variable "image_uri" {
  description = "ECR URI of the serving image (any partition's ECR host); null for the region's DLC of serving_engine (image_tag)."
  type        = string
  default     = null

  validation {
    # Every partition's ECR host: amazonaws.com, amazonaws.com.cn, amazonaws.eu, c2s.ic.gov,
    # sc2s.sgov.gov, csp.hci.ic.gov, cloud.adc-e.uk (the SDK's regions, via botocore).
    condition     = var.image_uri == null || can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.(amazonaws\\.com(\\.cn)?|amazonaws\\.eu|c2s\\.ic\\.gov|sc2s\\.sgov\\.gov|csp\\.hci\\.ic\\.gov|cloud\\.adc-e\\.uk)/[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|@sha256:[a-f0-9]{64})$", var.image_uri))
    error_message = "image_uri must be an ECR image such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/repo:tag (or @sha256:digest); SageMaker pulls only from ECR here."
  }
}

variable "image_tag" {
  description = "Tag of the serving_engine's DLC used when image_uri is null; null for the engine's newest release in the SageMaker SDK's table (TGI 3.3.6, vLLM DLC 0.30.0)."
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

variable "container_env" {
  description = "Extra environment variables for the TGI container (e.g. QUANTIZE, DTYPE)."
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

variable "max_total_tokens" {
  description = "The model's context budget per request, prompt plus answer (TGI MAX_TOTAL_TOKENS). TinyLlama's context is 2048."
  type        = number
  default     = 2048
  nullable    = false

  validation {
    condition     = var.max_total_tokens >= 2 && floor(var.max_total_tokens) == var.max_total_tokens
    error_message = "max_total_tokens must be a whole number of at least 2."
  }
}

variable "max_input_tokens" {
  description = "Longest prompt the container accepts (TGI MAX_INPUT_TOKENS; vLLM has only max_total_tokens); null for max_total_tokens - 1, TGI's own default. A container setting: changing it redeploys the endpoint."
  type        = number
  default     = null

  validation {
    condition     = var.max_input_tokens == null || try(var.max_input_tokens >= 1 && floor(var.max_input_tokens) == var.max_input_tokens, false)
    error_message = "max_input_tokens must be a whole number of at least 1, or null."
  }
}

variable "max_new_tokens" {
  description = "Most tokens generated per answer (functions' MAX_NEW_TOKENS). A generation setting of the functions, like temperature and top_p: changing it never touches the endpoint. Prompts get the rest of the context: min(max_input_tokens, max_total_tokens - max_new_tokens)."
  type        = number
  default     = 700
  nullable    = false

  validation {
    condition     = var.max_new_tokens >= 1 && floor(var.max_new_tokens) == var.max_new_tokens
    error_message = "max_new_tokens must be a whole number of at least 1."
  }
}

variable "max_batch_prefill_tokens" {
  description = "Tokens TGI prefills per batch (MAX_BATCH_PREFILL_TOKENS); null for the prompt limit + 50, TGI's own default."
  type        = number
  default     = null

  validation {
    condition     = var.max_batch_prefill_tokens == null || try(var.max_batch_prefill_tokens >= 1 && floor(var.max_batch_prefill_tokens) == var.max_batch_prefill_tokens, false)
    error_message = "max_batch_prefill_tokens must be a whole number of at least 1, or null."
  }
}

variable "container_startup_health_check_timeout" {
  description = "Seconds SageMaker waits for the container to download the weights, warm up and pass its health check."
  type        = number
  default     = 900
  nullable    = false

  validation {
    condition     = var.container_startup_health_check_timeout >= 60 && var.container_startup_health_check_timeout <= 3600
    error_message = "container_startup_health_check_timeout must be between 60 and 3600 seconds."
  }
}

variable "endpoint_kms_key_arn" {
  description = "KMS key for the endpoint's storage volume; only for instance types without NVMe instance storage (not g5/g6)."
  type        = string
  default     = null

  validation {
    condition     = var.endpoint_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.endpoint_kms_key_arn))
    error_message = "endpoint_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

variable "autoscaling_enabled" {
  description = "Whether to scale the endpoint's instance count on invocations per instance."
  type        = bool
  default     = false
  nullable    = false
}

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

variable "autoscaling" {
  description = "Autoscaling bounds, target invocations per instance per minute, and cooldowns (seconds); used when autoscaling_enabled."
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
# Generation settings (the functions' environment)
# -----------------------------------------------------------------------------

variable "temperature" {
  description = "Sampling temperature the functions request (TEMPERATURE); 0 means greedy decoding: the same question always gets the same answer."
  type        = number
  default     = 0.5
  nullable    = false

  validation {
    condition     = var.temperature >= 0 && var.temperature <= 2
    error_message = "temperature must be from 0 (greedy decoding) to 2."
  }
}

variable "top_p" {
  description = "Nucleus sampling probability mass the functions request (TOP_P)."
  type        = number
  default     = 0.9
  nullable    = false

  validation {
    condition     = var.top_p > 0 && var.top_p < 1
    error_message = "top_p must be strictly between 0 and 1 (TGI rejects 1.0)."
  }
}

variable "max_question_chars" {
  description = "Longest question the functions accept, in characters (MAX_QUESTION_CHARS); a longer one gets 413 request_too_large before the model is called."
  type        = number
  default     = 4000
  nullable    = false

  validation {
    # The request body is capped at 256 KiB; a question of 32768 characters fits it even
    # when every character is sent as a 6-byte JSON escape.
    condition     = var.max_question_chars >= 1 && var.max_question_chars <= 32768 && floor(var.max_question_chars) == var.max_question_chars
    error_message = "max_question_chars must be a whole number from 1 to 32768."
  }
}

variable "system_prompt" {
  description = "System prompt of the chat function (SYSTEM_PROMPT)."
  type        = string
  default     = "You are a cool and aloof robot, answering questions very briefly and directly."
  nullable    = false

  validation {
    condition     = length(var.system_prompt) >= 1 && length(var.system_prompt) <= 2000
    error_message = "system_prompt must be 1-2000 characters (Lambda also caps the whole environment at 4 KB of UTF-8 bytes, which the plan checks)."
  }
}

variable "system_prompt_placement" {
  description = "Where chat puts the system prompt (SYSTEM_PROMPT_PLACEMENT): auto sends a system message and, once the model's chat template refuses a system role (Gemma, Mistral-Instruct v0.1/v0.2), folds it into the first user message; user always folds it; system never does."
  type        = string
  default     = "auto"
  nullable    = false

  validation {
    condition     = contains(["auto", "system", "user"], var.system_prompt_placement)
    error_message = "system_prompt_placement must be \"auto\", \"system\" or \"user\"."
  }
}

# -----------------------------------------------------------------------------
# Functions
# -----------------------------------------------------------------------------

variable "chat_package_path" {
  description = "Path of the chat function's package; null for build/chat.zip next to this module (written by `make package`)."
  type        = string
  default     = null
}

variable "qa_package_path" {
  description = "Path of the QA function's package; null for build/qa.zip next to this module."
  type        = string
  default     = null
}

variable "layer_package_path" {
  description = "Path of the shared dependency layer (python/ prefix, x86_64, Python 3.12); null for build/layer.zip next to this module."
  type        = string
  default     = null
}

variable "function_memory_size" {
  description = "Memory of each function in MB (CPU share grows with it; 1024 keeps LangChain's import time short)."
  type        = number
  default     = 1024
  nullable    = false

  validation {
    condition     = var.function_memory_size >= 128 && var.function_memory_size <= 10240 && floor(var.function_memory_size) == var.function_memory_size
    error_message = "function_memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "function_timeout" {
  description = "Seconds each function may run; generation must finish inside it. At least 160: the SageMaker client may wait two attempts of 70 s (SageMaker's 60 s invocation limit plus transfer), their 5 s connects and a retry's backoff."
  type        = number
  default     = 180
  nullable    = false

  validation {
    condition     = var.function_timeout >= 30 && var.function_timeout <= 900 && floor(var.function_timeout) == var.function_timeout
    error_message = "function_timeout must be a whole number of seconds between 30 and 900 (Lambda's maximum)."
  }
  validation {
    condition     = var.function_timeout >= 160
    error_message = "function_timeout must be at least 160 seconds: the SageMaker client may wait 2 attempts x (5 s connect + 70 s read) and a backoff for one answer, and Lambda would kill the function first, without an answer."
  }
}

variable "function_reserved_concurrency" {
  description = "Concurrent executions reserved for, and capping, each function; null leaves them unreserved. A cap bounds the load either URL can put on the model."
  type        = number
  default     = null

  validation {
    condition     = var.function_reserved_concurrency == null || try(var.function_reserved_concurrency >= 0 && floor(var.function_reserved_concurrency) == var.function_reserved_concurrency, false)
    error_message = "function_reserved_concurrency must be a whole number of at least 0, or null."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing mode of the functions: PassThrough or Active."
  type        = string
  default     = "PassThrough"
  nullable    = false

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be \"PassThrough\" or \"Active\"."
  }
}

variable "log_level" {
  description = "Log level of the functions (POWERTOOLS_LOG_LEVEL)."
  type        = string
  default     = "INFO"
  nullable    = false

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "log_prompts" {
  description = "Whether the functions log prompts and answers (LOG_PROMPTS). This writes user text to CloudWatch: turn on only to debug."
  type        = bool
  default     = false
  nullable    = false
}

variable "log_retention_in_days" {
  description = "Days CloudWatch keeps the functions' and the endpoint's logs."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key to encrypt all log groups; null for CloudWatch's default encryption."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

# -----------------------------------------------------------------------------
# Function URLs
# -----------------------------------------------------------------------------

variable "url_authorization_type" {
  description = "Authorization of both function URLs: AWS_IAM (SigV4-signed requests; chat keeps each caller's conversations apart) or NONE (public: anyone who finds the URL can run up your endpoint's bill; chat continues only session ids it issued)."
  type        = string
  default     = "AWS_IAM"
  nullable    = false

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.url_authorization_type)
    error_message = "url_authorization_type must be \"AWS_IAM\" or \"NONE\" (NONE makes both URLs public)."
  }
}

variable "url_cors" {
  description = "CORS settings of both URLs for browser clients; null for none."
  type = object({
    allow_credentials = optional(bool, false)
    allow_headers     = optional(list(string), [])
    allow_methods     = optional(list(string), ["POST"])
    allow_origins     = list(string)
    expose_headers    = optional(list(string), [])
    max_age           = optional(number, 0)
  })
  default = null

  validation {
    condition     = var.url_cors == null || try(var.url_cors.max_age >= 0 && var.url_cors.max_age <= 86400, false)
    error_message = "url_cors.max_age must be between 0 and 86400 seconds."
  }
  validation {
    condition     = var.url_cors == null || try(!(var.url_cors.allow_credentials && contains(var.url_cors.allow_origins, "*")), false)
    error_message = "url_cors cannot allow credentials for every origin (\"*\"); list the origins."
  }
}

variable "chat_session_scope" {
  description = "Whose conversations a signed chat request reaches with url_authorization_type = AWS_IAM (CHAT_SESSION_SCOPE): \"caller\" (the account and the caller's userId: every role session has its own) or \"role\" (an assumed role's account and unique id AROA..., whatever the session name: all replicas of a backend service share one set of conversations and keep their users apart by session id). IAM users and public URLs behave the same either way. Switching it leaves existing conversations unreachable."
  type        = string
  default     = "caller"
  nullable    = false

  validation {
    condition     = contains(["caller", "role"], var.chat_session_scope)
    error_message = "chat_session_scope must be \"caller\" (each role session has its own conversations) or \"role\" (every session of one role shares them)."
  }
}

variable "response_streaming" {
  description = "Whether both URLs stream answers as the model writes them (invoke mode RESPONSE_STREAM, through AWS's Lambda Web Adapter layer, LWA 1.1.0): accept: text/event-stream gets Server-Sent Events, text/plain the bare text, anything else the same JSON as before. false: today's buffered Python handlers (invoke mode BUFFERED)."
  type        = bool
  default     = true
  nullable    = false
}

variable "adapter_layer_arn" {
  description = "Lambda Web Adapter layer version the functions run instead of AWS's published one: required where the module knows no published version of it (GovCloud, me-south-1, mx-central-1), or for a copy in your account; null for the LWA 1.1.0 layer of the region. Used with response_streaming."
  type        = string
  default     = null

  validation {
    condition     = var.adapter_layer_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.adapter_layer_arn))
    error_message = "adapter_layer_arn must be a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION), or null."
  }
}

# -----------------------------------------------------------------------------
# Chat history (DynamoDB)
# -----------------------------------------------------------------------------

variable "chat_history_enabled" {
  description = "Whether the chat function keeps conversations in a DynamoDB table (`<name>-chat-history`); off makes it stateless."
  type        = bool
  default     = true
  nullable    = false
}

variable "chat_history_ttl_days" {
  description = "Days each exchange of a conversation is kept, counted from when that exchange was written: older turns expire one by one (the function stops reading them at once; DynamoDB's TTL deletes them within days) (HISTORY_TTL_DAYS)."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.chat_history_ttl_days >= 1 && var.chat_history_ttl_days <= 365 && floor(var.chat_history_ttl_days) == var.chat_history_ttl_days
    error_message = "chat_history_ttl_days must be a whole number of days from 1 to 365."
  }
}

variable "chat_history_max_turns" {
  description = "Most recent exchanges the chat function reads back into the prompt (HISTORY_MAX_TURNS); fewer still when they would not fit the model's input budget. Lower it to shorten prompts."
  type        = number
  default     = 20
  nullable    = false

  validation {
    condition     = var.chat_history_max_turns >= 1 && var.chat_history_max_turns <= 100 && floor(var.chat_history_max_turns) == var.chat_history_max_turns
    error_message = "chat_history_max_turns must be a whole number from 1 to 100."
  }
}

variable "chat_history_point_in_time_recovery" {
  description = "Whether to enable point-in-time recovery on the history table. Off by default: it keeps deleted conversations restorable for up to 35 days."
  type        = bool
  default     = false
  nullable    = false
}

variable "chat_history_deletion_protection" {
  description = "Whether to protect the history table from deletion (terraform destroy then fails until it is turned off)."
  type        = bool
  default     = false
  nullable    = false
}

variable "chat_history_kms_key_arn" {
  description = "Customer managed KMS key for the history table; null for the AWS managed key (aws/dynamodb)."
  type        = string
  default     = null

  validation {
    condition     = var.chat_history_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.chat_history_kms_key_arn))
    error_message = "chat_history_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

# -----------------------------------------------------------------------------
# Document QA
# -----------------------------------------------------------------------------

variable "qa_document_buckets" {
  description = "S3 buckets the QA function may read `s3://bucket/key` documents from (QA_DOCUMENT_BUCKETS); its role gets s3:GetObject on these buckets' objects only. Empty turns S3 documents off."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for b in var.qa_document_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", b))])
    error_message = "qa_document_buckets must hold bucket names (3-63 lower-case letters, digits, dots and hyphens), not ARNs or s3:// URIs."
  }
}

variable "qa_public_document_reading" {
  description = "Whether a public QA URL (url_authorization_type = NONE) may read the objects of qa_document_buckets: then anyone on the internet can have the function quote any object in those buckets. Without it such a plan fails."
  type        = bool
  default     = false
  nullable    = false
}

variable "qa_document_kms_key_arns" {
  description = "KMS keys encrypting objects in qa_document_buckets (SSE-KMS); the QA role gets kms:Decrypt on these only. Not needed for SSE-S3."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for k in var.qa_document_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", k))])
    error_message = "qa_document_kms_key_arns must hold KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "qa_max_document_bytes" {
  description = "Most bytes of document text one QA request may carry, inline and read from S3 together (QA_MAX_DOCUMENT_BYTES); over it the function answers 413."
  type        = number
  default     = 524288
  nullable    = false

  validation {
    condition     = var.qa_max_document_bytes >= 1024 && var.qa_max_document_bytes <= 104857600 && floor(var.qa_max_document_bytes) == var.qa_max_document_bytes
    error_message = "qa_max_document_bytes must be a whole number of bytes from 1024 to 104857600 (100 MiB)."
  }
}

variable "qa_max_chunks" {
  description = "Most chunks one QA request's documents may split into, each one model call (QA_MAX_CHUNKS); over it the function answers 413."
  type        = number
  default     = 200
  nullable    = false

  validation {
    condition     = var.qa_max_chunks >= 1 && var.qa_max_chunks <= 10000 && floor(var.qa_max_chunks) == var.qa_max_chunks
    error_message = "qa_max_chunks must be a whole number from 1 to 10000."
  }
}

variable "qa_map_concurrency" {
  description = "Model calls the QA function's map_reduce chain keeps in flight at once (QA_MAP_CONCURRENCY); TGI batches concurrent requests."
  type        = number
  default     = 4
  nullable    = false

  validation {
    condition     = var.qa_map_concurrency >= 1 && var.qa_map_concurrency <= 64 && floor(var.qa_map_concurrency) == var.qa_map_concurrency
    error_message = "qa_map_concurrency must be a whole number from 1 to 64."
  }
}

# -----------------------------------------------------------------------------
# Cold start
# -----------------------------------------------------------------------------

variable "snap_start" {
  description = "Whether Lambda SnapStart snapshots each function's published version after its init, so cold starts restore it instead of importing LangChain again (billed per GB cached and restored, see README; unavailable in Asia Pacific (New Zealand) and (Taipei): set false there)."
  type        = bool
  default     = true
  nullable    = false
}

variable "wait_for_published_version" {
  description = "Whether, with snap_start, the apply waits with the AWS CLI until each function's new version is Active before its URL serves it, and fails with the version's StateReason when the app's init failed (docs/operations.md); false for a machine without the AWS CLI."
  type        = bool
  default     = true
  nullable    = false
}

# -----------------------------------------------------------------------------
# Monitoring: alarms and dashboard (docs/operations.md)
# -----------------------------------------------------------------------------

variable "alarms_enabled" {
  description = "Whether to create the CloudWatch alarms: each function URL's 5xx, the functions' errors, throttles and duration, the endpoint's 5xx, latency and utilisation (when this stack runs it), the history table's throttles (when it exists)."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm goes to ALARM and back to OK, such as an SNS topic; empty: the alarms only change state (visible in the console and on the dashboard)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:aws[a-z-]*:", arn))])
    error_message = "alarm_actions must be ARNs (arn:aws:sns:<region>:<account>:<topic>, for example)."
  }
}

variable "alarm_thresholds" {
  description = "Thresholds of the alarms, each reached or exceeded within one period of period_seconds (300). Defaults and why: url_5xx_count and endpoint_5xx_errors 5 (one 5xx is often a blip the caller retries; five in a period is a pattern); function_errors 1 (only a timeout, an out-of-memory kill or a failed init get there: serve() answers every other failure as a JSON 5xx); function_throttles 1 and dynamodb_throttles 1 (each one failed a caller); duration_percent_of_timeout 80 (the longest request, one slow model call from being killed); model_latency_p90_ms 30000 (half SageMaker's 60 s invocation limit); endpoint_utilization_percent 90 (per GPU on GPU instances, per vCPU on CPU ones: sustained, requests queue). docs/operations.md has more."
  type = object({
    period_seconds               = optional(number, 300)
    url_5xx_count                = optional(number, 5)
    function_errors              = optional(number, 1)
    function_throttles           = optional(number, 1)
    duration_percent_of_timeout  = optional(number, 80)
    endpoint_5xx_errors          = optional(number, 5)
    model_latency_p90_ms         = optional(number, 30000)
    endpoint_utilization_percent = optional(number, 90)
    dynamodb_throttles           = optional(number, 1)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains([60, 300, 900, 3600], var.alarm_thresholds.period_seconds)
    error_message = "alarm_thresholds.period_seconds must be 60, 300, 900 or 3600."
  }

  validation {
    condition = alltrue([
      for count in [
        var.alarm_thresholds.url_5xx_count, var.alarm_thresholds.function_errors,
        var.alarm_thresholds.function_throttles, var.alarm_thresholds.endpoint_5xx_errors,
        var.alarm_thresholds.dynamodb_throttles, var.alarm_thresholds.model_latency_p90_ms,
      ] : count >= 1
    ])
    error_message = "alarm_thresholds: the counts and model_latency_p90_ms must be at least 1 (an alarm at 0 would always be in ALARM)."
  }

  validation {
    condition = alltrue([
      for percent in [
        var.alarm_thresholds.duration_percent_of_timeout, var.alarm_thresholds.endpoint_utilization_percent,
      ] : percent > 0 && percent <= 100
    ])
    error_message = "alarm_thresholds: duration_percent_of_timeout and endpoint_utilization_percent must be above 0 and at most 100."
  }
}

variable "dashboard_enabled" {
  description = "Whether to create a CloudWatch dashboard of the stack: requests and errors by code, latency, tokens, cut answers, cold starts, the endpoint's invocations, latency and utilisation."
  type        = bool
  default     = true
  nullable    = false
}

# -----------------------------------------------------------------------------
# Sign-in without AWS credentials (auth.tf): bearer modes need url_authorization_type = "NONE"
# -----------------------------------------------------------------------------

variable "api_keys_enabled" {
  description = "Whether callers may sign in with API keys (Authorization: Bearer llmk_...): creates a DynamoDB table of key hashes and daily usage (output api_keys_table_name) that `python -m tools.api_keys` manages. Needs url_authorization_type = \"NONE\"."
  type        = bool
  default     = false
  nullable    = false
}

variable "jwt_issuer" {
  description = "Issuer (the exact `iss`) of the OIDC or Cognito tokens callers may sign in with (Authorization: Bearer <JWT>), e.g. https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf; null for none. Its signing keys come from its discovery document unless jwt_jwks_url says where. Needs url_authorization_type = \"NONE\" and jwt_audiences."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_issuer == null || can(regex("^https://[^/?#\\s]+[^?#\\s]*$", var.jwt_issuer))
    error_message = "jwt_issuer must be an https URL without query or fragment, exactly as the tokens' iss claim spells it."
  }
}

variable "jwt_audiences" {
  description = "Audiences a token must be issued for: one of them in `aud`, or a Cognito access token's `client_id`. create_cognito_user_pool adds its app client's id."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for audience in var.jwt_audiences : length(trimspace(audience)) > 0 && !strcontains(audience, ",")])
    error_message = "jwt_audiences must be non-empty strings without commas."
  }
}

variable "jwt_jwks_url" {
  description = "Where jwt_issuer's signing keys (JWKS) are, when not at the jwks_uri of its discovery document; null to discover it. https only (http on a loopback address, for local stacks)."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_jwks_url == null || can(regex("^(https://[^/?#\\s]+|http://(127\\.[0-9.]+|localhost|\\[::1\\])(:[0-9]+)?)([/?][^\\s#]*)?$", var.jwt_jwks_url))
    error_message = "jwt_jwks_url must be an https URL (http only on a loopback address: 127.x.x.x, localhost or [::1])."
  }
}

variable "create_cognito_user_pool" {
  description = "Whether to create a Cognito user pool (invited users only) and a public app client, and trust their tokens: sets the issuer and adds the client's id to jwt_audiences (outputs cognito_user_pool_id, cognito_app_client_id). Needs url_authorization_type = \"NONE\"; leave jwt_issuer null."
  type        = bool
  default     = false
  nullable    = false
}
