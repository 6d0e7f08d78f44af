# This configuration declares no provider of its own: the AWS provider's bounds are the module's
# (versions.tf at the repository root), which Terraform applies wherever the module is called
# from, and its region comes from AWS_REGION or the AWS profile.
terraform {
  required_version = ">= 1.5"
}
