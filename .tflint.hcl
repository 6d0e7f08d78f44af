# tflint configuration for `make lint` (tflint --recursive --config "$PWD/.tflint.hcl").
# Only the terraform ruleset bundled with tflint, so `tflint --init` downloads nothing. It
# enforces the conventions the README promises: typed and documented variables and outputs,
# the standard module layout, snake_case names, no unused declarations, and version
# constraints on Terraform and every provider.

config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

rule "terraform_documented_variables" {
  enabled = true
}

rule "terraform_documented_outputs" {
  enabled = true
}

rule "terraform_typed_variables" {
  enabled = true
}

rule "terraform_standard_module_structure" {
  enabled = true
}

rule "terraform_naming_convention" {
  enabled = true
  format  = "snake_case"
}

rule "terraform_unused_declarations" {
  enabled = true
}

rule "terraform_unused_required_providers" {
  enabled = true
}

rule "terraform_comment_syntax" {
  enabled = true
}
