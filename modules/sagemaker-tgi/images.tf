# -----------------------------------------------------------------------------
# Hugging Face TGI Deep Learning Container registries, by region
#
# Copied from the SageMaker Python SDK's image config for the `huggingface-llm` framework
# (src/sagemaker/image_uri_config/huggingface-llm.json, TGI 2.x-3.x entries), where every TGI
# version lists the same account per region. The repository is
# huggingface-pytorch-tgi-inference; the host suffix comes from the partition
# (amazonaws.com, or amazonaws.com.cn in China). A region missing here fails at plan time
# unless `image_uri` is set.
# -----------------------------------------------------------------------------

locals {
  tgi_image_repository = "huggingface-pytorch-tgi-inference"

  tgi_image_accounts = {
    # Commercial regions
    "af-south-1"     = "626614931356"
    "ap-east-1"      = "871362719292"
    "ap-northeast-1" = "763104351884"
    "ap-northeast-2" = "763104351884"
    "ap-northeast-3" = "364406365360"
    "ap-south-1"     = "763104351884"
    "ap-south-2"     = "772153158452"
    "ap-southeast-1" = "763104351884"
    "ap-southeast-2" = "763104351884"
    "ap-southeast-3" = "907027046896"
    "ap-southeast-4" = "457447274322"
    "ap-southeast-5" = "550225433462"
    "ap-southeast-7" = "590183813437"
    "ca-central-1"   = "763104351884"
    "ca-west-1"      = "204538143572"
    "eu-central-1"   = "763104351884"
    "eu-central-2"   = "380420809688"
    "eu-north-1"     = "763104351884"
    "eu-south-1"     = "692866216735"
    "eu-south-2"     = "503227376785"
    "eu-west-1"      = "763104351884"
    "eu-west-2"      = "763104351884"
    "eu-west-3"      = "763104351884"
    "il-central-1"   = "780543022126"
    "me-central-1"   = "914824155844"
    "me-south-1"     = "217643126080"
    "mx-central-1"   = "637423239942"
    "sa-east-1"      = "763104351884"
    "us-east-1"      = "763104351884"
    "us-east-2"      = "763104351884"
    "us-west-1"      = "763104351884"
    "us-west-2"      = "763104351884"

    # China (partition aws-cn, host suffix amazonaws.com.cn)
    "cn-north-1"     = "727897471807"
    "cn-northwest-1" = "727897471807"

    # AWS GovCloud (US) (partition aws-us-gov)
    "us-gov-east-1" = "446045086412"
    "us-gov-west-1" = "442386744353"
  }
}
