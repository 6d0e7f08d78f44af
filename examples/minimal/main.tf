# The least a deployment needs: a name. The region comes from AWS_REGION (or var.region), the
# function packages from build/ at the repository root (`make package`), everything else from
# the defaults: TinyLlama on one ml.g5.xlarge, IAM-authenticated URLs, chat history on.

provider "aws" {
  region = var.region
}

module "langchain_tgi" {
  source = "../.."

  name = var.name
}
