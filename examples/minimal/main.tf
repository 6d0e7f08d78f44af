# The least a deployment needs: a name. The region comes from AWS_REGION or the AWS profile, the
# function packages from build/ at the repository root (`make package`), everything else from
# the defaults: TinyLlama on one ml.g5.xlarge, IAM-authenticated URLs, chat history on.

module "langchain_tgi" {
  source = "../.."

  name = var.name
}
