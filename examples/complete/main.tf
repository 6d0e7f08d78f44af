# Every switch of the root module, plus what a production account usually adds around it: a
# customer managed key for the conversation history, a private bucket of documents for the QA
# function, and a policy to attach to whoever may call the IAM-authenticated URLs.

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# -----------------------------------------------------------------------------
# Customer managed key for the chat history table
# -----------------------------------------------------------------------------

data "aws_iam_policy_document" "history_key" {
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key; this is AWS's default statement delegating to IAM.
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key; this is AWS's default statement delegating to IAM.
  #checkov:skip=CKV_AWS_109:In a key policy "*" means this key; this is AWS's default statement delegating to IAM.

  # The account's default key policy: IAM policies in this account decide who uses the key.
  # DynamoDB uses it through grants it creates when the table is created.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "history" {
  description             = "Encrypts the ${var.name} chat history table"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.history_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "history" {
  name          = "alias/${var.name}-chat-history"
  target_key_id = aws_kms_key.history.key_id
}

# -----------------------------------------------------------------------------
# Documents the QA function may read (`s3://<name>-qa-documents-<account>/key`)
# -----------------------------------------------------------------------------

resource "aws_kms_key" "documents" {
  description             = "Encrypts the ${var.name} QA documents bucket"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.history_key.json # the account's default key policy
  tags                    = var.tags
}

resource "aws_s3_bucket" "documents" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice this example leaves to the account.
  #checkov:skip=CKV_AWS_18:Access logging needs a log bucket of its own; CloudTrail data events are the alternative.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to new documents: the QA function reads them on request.
  bucket        = "${var.name}-qa-documents-${data.aws_caller_identity.current.account_id}"
  force_destroy = var.documents_force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "documents" {
  bucket                  = aws_s3_bucket.documents.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "documents" {
  bucket = aws_s3_bucket.documents.id
  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: IAM alone decides access
  }
}

resource "aws_s3_bucket_versioning" "documents" {
  bucket = aws_s3_bucket.documents.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "documents" {
  bucket = aws_s3_bucket.documents.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.documents.arn
    }
    bucket_key_enabled = true # fewer KMS requests, so lower cost
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "documents" {
  bucket = aws_s3_bucket.documents.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
  depends_on = [aws_s3_bucket_versioning.documents]
}

# -----------------------------------------------------------------------------
# Where the alarms notify: an encrypted SNS topic (subscribe your pager or email to it)
# -----------------------------------------------------------------------------

data "aws_iam_policy_document" "alarms_key" {
  #checkov:skip=CKV_AWS_111:In a key policy "*" means this key; this is AWS's default statement delegating to IAM.
  #checkov:skip=CKV_AWS_356:In a key policy "*" means this key; this is AWS's default statement delegating to IAM.
  #checkov:skip=CKV_AWS_109:In a key policy "*" means this key; this is AWS's default statement delegating to IAM.
  source_policy_documents = [data.aws_iam_policy_document.history_key.json]

  # CloudWatch publishes alarm notifications to an encrypted topic only if the key lets it:
  # the AWS managed key (alias/aws/sns) does not, so the topic needs a key of its own.
  statement {
    sid       = "CloudWatchPublishesAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "alarms" {
  description             = "Encrypts the ${var.name} alarm notifications topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alarms_key.json
  tags                    = var.tags
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
  tags              = var.tags
}

# -----------------------------------------------------------------------------
# The stack
# -----------------------------------------------------------------------------

module "langchain_tgi" {
  source = "../.."

  name = var.name
  tags = var.tags

  # Model endpoint
  model_id                               = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
  model_revision                         = var.model_revision
  instance_type                          = "ml.g5.xlarge"
  instance_count                         = 1
  max_total_tokens                       = 2048
  max_new_tokens                         = 512
  container_startup_health_check_timeout = 900
  container_env                          = { DTYPE = "bfloat16" }

  autoscaling_enabled = true
  autoscaling = {
    min_capacity                    = 1
    max_capacity                    = 3
    target_invocations_per_instance = 20
    scale_in_cooldown               = 600
    scale_out_cooldown              = 300
  }

  # Generation
  temperature   = 0.5
  top_p         = 0.9
  system_prompt = "You are a concise assistant. Answer in at most three sentences."

  # Functions
  function_memory_size          = 1024
  function_timeout              = 180
  function_reserved_concurrency = 10 # at most 10 requests in flight per function
  tracing_mode                  = "Active"
  log_level                     = "INFO"
  log_prompts                   = false
  log_retention_in_days         = 90

  # URLs: IAM-authenticated; callers need the policy below. Answers stream through AWS's
  # Lambda Web Adapter layer of the region (the default); where the module knows no version of
  # it (GovCloud, me-south-1, mx-central-1), name one, or a copy in your account.
  url_authorization_type = "AWS_IAM"
  chat_session_scope     = "caller" # "role": every session of one role shares its conversations
  response_streaming     = true
  adapter_layer_arn      = var.adapter_layer_arn

  # Chat history
  chat_history_enabled                = true
  chat_history_ttl_days               = 30
  chat_history_point_in_time_recovery = true
  chat_history_deletion_protection    = var.protect_chat_history
  chat_history_kms_key_arn            = aws_kms_key.history.arn

  # Document QA: documents from the bucket above, limits and map concurrency
  qa_document_buckets      = [aws_s3_bucket.documents.bucket]
  qa_document_kms_key_arns = [aws_kms_key.documents.arn]
  qa_max_document_bytes    = 524288
  qa_max_chunks            = 200
  qa_map_concurrency       = 4

  # Monitoring (docs/operations.md): alarms notify the topic when they fire and when they clear
  alarms_enabled = true
  alarm_actions  = [aws_sns_topic.alarms.arn]
  alarm_thresholds = {
    period_seconds       = 300
    url_5xx_count        = 5
    model_latency_p90_ms = 20000 # max_new_tokens is 512 here: a p90 over 20 s is a slow instance
  }
  dashboard_enabled = true
}

# -----------------------------------------------------------------------------
# Who may call the URLs: attach this policy to the users or roles of your clients
# -----------------------------------------------------------------------------

# The module's ready policy: both URLs' aliases, lambda:InvokeFunction only through a Function URL
# (lambda:InvokedViaFunctionUrl), so a caller cannot call Invoke with an event naming another.
resource "aws_iam_policy" "callers" {
  name        = "${var.name}-url-callers"
  description = "Call the ${var.name} chat and QA function URLs"
  policy      = module.langchain_tgi.url_caller_policy_json
  tags        = var.tags
}
