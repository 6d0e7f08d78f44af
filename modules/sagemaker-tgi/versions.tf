terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Lower bound only: the oldest release the test suite applies against. 6.x works too.
      version = ">= 5.100"
    }
  }
}
