# Only the functions, for an endpoint you already run (JumpStart, another stack, a shared GPU)
# in this account and region: no SageMaker resource is created, and the functions' roles may
# invoke that one endpoint. It must answer the Messages API on /invocations (TGI >= 2.4, or a
# vLLM image); the token limits must be ones it allows.

module "langchain_tgi" {
  source = "../.."

  name                   = var.name
  existing_endpoint_name = var.endpoint_name
  max_total_tokens       = var.max_total_tokens
  max_new_tokens         = var.max_new_tokens
}
