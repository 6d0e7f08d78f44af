# -----------------------------------------------------------------------------
# Naming and tags
# -----------------------------------------------------------------------------

variable "function_name" {
  description = "Name of the function; also names its execution role and its log group (/aws/lambda/<name>)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 letters, digits, hyphens or underscores (Lambda's and IAM's common limit)."
  }
}

variable "description" {
  description = "Description of the function."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = length(var.description) <= 256
    error_message = "description must be at most 256 characters."
  }
}

variable "tags" {
  description = "Tags applied to every taggable resource of the module."
  type        = map(string)
  default     = {}
  nullable    = false
}

# -----------------------------------------------------------------------------
# Code and runtime
# -----------------------------------------------------------------------------

variable "filename" {
  description = "Path of the deployment package (.zip) of the function code."
  type        = string

  validation {
    condition     = endswith(var.filename, ".zip")
    error_message = "filename must be the path of a .zip deployment package."
  }
  validation {
    condition     = fileexists(var.filename)
    error_message = "filename does not exist; build the packages first (`make package` writes build/chat.zip, build/qa.zip and build/layer.zip)."
  }
}

variable "source_code_hash" {
  description = "Base64 SHA-256 of the package, which triggers code updates; null to compute it from filename."
  type        = string
  default     = null
}

variable "handler" {
  description = "Entry point of the function: with response_streaming, the start script in the package that the adapter runs (e.g. run.sh); without, a Python handler as module.function (e.g. chat.handler.handler)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_./-]*\\.[A-Za-z_][A-Za-z0-9_]*$", var.handler)) && length(var.handler) <= 128
    error_message = "handler must look like module.function (e.g. chat.handler.handler) or a start script name (e.g. run.sh), at most 128 characters."
  }
}

variable "runtime" {
  description = "Lambda runtime identifier of the function."
  type        = string
  default     = "python3.12"
  nullable    = false

  validation {
    condition     = contains(["python3.10", "python3.11", "python3.12", "python3.13"], var.runtime)
    error_message = "runtime must be a supported Python runtime: python3.10, python3.11, python3.12 or python3.13."
  }
}

variable "architecture" {
  description = "Instruction set of the function; must match the one its layers and wheels were built for."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be \"x86_64\" or \"arm64\"."
  }
}

variable "layers" {
  description = "ARNs of layer versions to attach (at most 5), in order."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = length(var.layers) <= 5 && alltrue([for arn in var.layers : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", arn))])
    error_message = "layers must be at most 5 layer version ARNs (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB; CPU share grows with it."
  type        = number
  default     = 1024
  nullable    = false

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout" {
  description = "Seconds the function may run; above the model's worst-case latency (the SageMaker client retries a ~70 s read once)."
  type        = number
  default     = 180
  nullable    = false

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds between 1 and 900 (Lambda's maximum)."
  }
}

variable "environment_variables" {
  description = "Environment variables of the function. Keys Lambda reserves (AWS_REGION, AWS_LAMBDA_*, ...) are refused."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([for k in keys(var.environment_variables) : can(regex("^[A-Za-z][A-Za-z0-9_]*$", k)) && !contains([
      "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION",
      "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_NAME",
      "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
      "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "AWS_SECRET_ACCESS_KEY",
      "AWS_SESSION_TOKEN", "LAMBDA_RUNTIME_DIR", "LAMBDA_TASK_ROOT",
    ], k)])
    error_message = "environment_variables keys must be names like MY_SETTING and must not be one Lambda reserves (AWS_REGION, AWS_DEFAULT_REGION, AWS_LAMBDA_*, AWS_*_KEY*, AWS_SESSION_TOKEN, LAMBDA_TASK_ROOT, ...)."
  }
  validation {
    condition     = alltrue([for k in keys(var.environment_variables) : k != "AWS_LAMBDA_EXEC_WRAPPER" && !startswith(k, "AWS_LWA_")])
    error_message = "environment_variables must not set AWS_LAMBDA_EXEC_WRAPPER or AWS_LWA_* keys: response_streaming sets the adapter's wrapper and invoke mode, and adapter_environment takes its other settings."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrent executions reserved for (and capping) the function; null leaves it unreserved. A cap bounds how hard the URL can drive the model."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 0 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions, false)
    error_message = "reserved_concurrent_executions must be a whole number of at least 0, or null."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing mode: \"PassThrough\" (trace only when the caller asks) or \"Active\" (sample and record; grants the role X-Ray writes)."
  type        = string
  default     = "PassThrough"
  nullable    = false

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be \"PassThrough\" or \"Active\"."
  }
}

variable "snap_start" {
  description = "Whether Lambda SnapStart snapshots each published version after its init, so cold starts restore the snapshot instead of importing the code again (Python 3.12+; billed per GB cached and restored; unavailable in Asia Pacific (New Zealand) and (Taipei), and with provisioned concurrency, EFS or ephemeral storage over 512 MB)."
  type        = bool
  default     = true
  nullable    = false
}

variable "wait_for_published_version" {
  description = "Whether the apply waits until each published version is Active before the alias (and so the URL) moves to it, with the AWS CLI on the applying machine (`aws lambda wait published-version-active`, up to 26 minutes), and fails naming the version's StateReason when its init failed; used with snap_start, whose init runs at publish time. false: the alias moves at once, as provider 5.x does not wait, and a version whose init fails is served."
  type        = bool
  default     = true
  nullable    = false
}

variable "alias_name" {
  description = "Name of the alias that points at the latest published version; the Function URL and its permissions are on it."
  type        = string
  default     = "live"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z_-][A-Za-z0-9_-]{0,127}$", var.alias_name)) && !can(regex("^[0-9]+$", var.alias_name)) && var.alias_name != "$LATEST"
    error_message = "alias_name must be 1-128 letters, digits, hyphens or underscores, not starting with a digit (a version number)."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN that encrypts the environment variables; null for the AWS managed key. The role gets kms:Decrypt on it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

# -----------------------------------------------------------------------------
# Permissions
# -----------------------------------------------------------------------------

variable "policy_statements" {
  description = "IAM statements added to the execution role, e.g. sagemaker:InvokeEndpoint on one endpoint ARN. Name resources precisely: this is the function's whole reach."
  type = list(object({
    sid       = optional(string)
    effect    = optional(string, "Allow")
    actions   = list(string)
    resources = list(string)
    conditions = optional(list(object({
      test     = string
      variable = string
      values   = list(string)
    })), [])
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for s in var.policy_statements : contains(["Allow", "Deny"], s.effect) && length(s.actions) > 0 && length(s.resources) > 0])
    error_message = "Each policy statement needs effect \"Allow\" or \"Deny\" and at least one action and one resource."
  }
  validation {
    condition     = alltrue([for s in var.policy_statements : s.sid == null || can(regex("^[A-Za-z0-9]+$", s.sid))])
    error_message = "A policy statement sid may contain only letters and digits."
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
# Function URL
# -----------------------------------------------------------------------------

variable "authorization_type" {
  description = "Who may call the URL: \"AWS_IAM\" (SigV4-signed requests of principals allowed lambda:InvokeFunctionUrl) or \"NONE\" (anyone on the internet; adds public resource-policy statements)."
  type        = string
  default     = "AWS_IAM"
  nullable    = false

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.authorization_type)
    error_message = "authorization_type must be \"AWS_IAM\" or \"NONE\" (public: anyone can call the URL and spend your model's hours)."
  }
}

variable "response_streaming" {
  description = "Whether the URL streams the response (invoke mode RESPONSE_STREAM) through AWS's Lambda Web Adapter: the module adds the adapter's layer (LWA 1.1.0 for the region and architecture, or adapter_layer_arn) and its wrapper environment, and the adapter runs handler, a start script, as a web server. false: a buffered Python handler (module.function), invoke mode BUFFERED."
  type        = bool
  default     = true
  nullable    = false
}

variable "adapter_layer_arn" {
  description = "Lambda Web Adapter layer version to run instead of AWS's published one: required where the module knows no published version of it (GovCloud, me-south-1, mx-central-1, arm64 in China: web-adapter-layers.json), or for a copy in your account; null for the LWA 1.1.0 layer of the region and architecture. Used with response_streaming."
  type        = string
  default     = null

  validation {
    condition     = var.adapter_layer_arn == null || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$", var.adapter_layer_arn))
    error_message = "adapter_layer_arn must be a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION), or null."
  }
}

variable "adapter_environment" {
  description = "Further Lambda Web Adapter settings (AWS_LWA_* variables: port, readiness check path, SnapStart hook paths) added to the environment with response_streaming; the wrapper and invoke mode are set by the module."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.adapter_environment) : can(regex("^AWS_LWA_[A-Z0-9_]+$", k)) && k != "AWS_LWA_INVOKE_MODE"])
    error_message = "adapter_environment keys must be AWS_LWA_* settings of the adapter other than AWS_LWA_INVOKE_MODE, which response_streaming sets."
  }
}

variable "cors" {
  description = "CORS settings of the URL for browser callers; null for none."
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
    condition     = var.cors == null || try(var.cors.max_age >= 0 && var.cors.max_age <= 86400, false)
    error_message = "cors.max_age must be between 0 and 86400 seconds."
  }
  validation {
    condition     = var.cors == null || try(!(var.cors.allow_credentials && contains(var.cors.allow_origins, "*")), false)
    error_message = "cors cannot allow credentials for every origin (\"*\"); list the origins."
  }
}

# -----------------------------------------------------------------------------
# Logs
# -----------------------------------------------------------------------------

variable "log_retention_in_days" {
  description = "Days CloudWatch keeps the function's logs."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of CloudWatch's values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key ARN to encrypt the function's log group; null for CloudWatch's default encryption. The key policy must allow the logs service."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null."
  }
}

# -----------------------------------------------------------------------------
# Alarms
# -----------------------------------------------------------------------------

variable "alarms_enabled" {
  description = "Whether to create CloudWatch alarms on the alias the URL serves: URL 5xx, errors, throttles, duration near the timeout."
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
  description = "Thresholds of the alarms, each reached or exceeded in one period of period_seconds: url_5xx_count and errors and throttles (counts), duration_percent_of_timeout (the longest request, in percent of timeout)."
  type = object({
    period_seconds              = optional(number, 300)
    url_5xx_count               = optional(number, 5)
    errors                      = optional(number, 1)
    throttles                   = optional(number, 1)
    duration_percent_of_timeout = optional(number, 80)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains([60, 300, 900, 3600], var.alarm_thresholds.period_seconds)
    error_message = "alarm_thresholds.period_seconds must be 60, 300, 900 or 3600."
  }

  validation {
    condition     = var.alarm_thresholds.duration_percent_of_timeout > 0 && var.alarm_thresholds.duration_percent_of_timeout <= 100
    error_message = "alarm_thresholds.duration_percent_of_timeout must be above 0 and at most 100."
  }
}
