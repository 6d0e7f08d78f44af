terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the oldest release the test suite applies against; the stack is deployable, so
      # it stops short of the next major, whose breaking changes it has not been checked with.
      version = ">= 5.100, < 7.0"
    }
  }
}
