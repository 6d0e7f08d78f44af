# A public demo: no conversation memory (no DynamoDB table, the chat function is stateless)
# and URLs anyone can call without signing. Anyone who finds a URL can spend the endpoint's
# hours, so reserved concurrency caps how many requests run at once, and the endpoint runs
# on the cheaper CPU instance the original example used.

module "langchain_tgi" {
  source = "../.."

  name = var.name
  tags = { exposure = "public-demo" }

  instance_type  = "ml.m5.xlarge" # CPU: ~6x cheaper than ml.g5.xlarge, answers take far longer
  max_new_tokens = 256            # short answers finish inside SageMaker's 60 s limit on CPU

  chat_history_enabled          = false
  url_authorization_type        = "NONE"
  function_reserved_concurrency = 2
  url_cors = {
    allow_origins = var.allowed_origins
    allow_methods = ["POST"]
    allow_headers = ["content-type"]
    max_age       = 3600
  }
}
