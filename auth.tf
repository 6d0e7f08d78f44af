# -----------------------------------------------------------------------------
# Sign-in without AWS credentials: API keys and OIDC/Cognito tokens (docs/security.md)
# -----------------------------------------------------------------------------

# Function URLs know only AWS_IAM and NONE, so a bearer is checked in the function
# (functions/llm_app/auth), behind a public URL: a signed request would carry no bearer.
locals {
  jwt_issuer = var.create_cognito_user_pool ? "https://${aws_cognito_user_pool.this[0].endpoint}" : (var.jwt_issuer == null ? "" : var.jwt_issuer)
  jwt_audiences = concat(
    var.jwt_audiences,
    var.create_cognito_user_pool ? [aws_cognito_user_pool_client.this[0].id] : [],
  )
  bearer_auth_enabled = var.api_keys_enabled || var.jwt_issuer != null || var.create_cognito_user_pool

  api_keys_table_name = var.api_keys_enabled ? aws_dynamodb_table.api_keys[0].name : null

  # Only the modes that are on, so a deployment without them plans no change to its functions.
  auth_environment = merge(
    var.api_keys_enabled ? { API_KEYS_TABLE_NAME = local.api_keys_table_name } : {},
    local.jwt_issuer != "" ? {
      JWT_ISSUER    = local.jwt_issuer
      JWT_AUDIENCES = join(",", local.jwt_audiences)
      JWT_JWKS_URL  = var.jwt_jwks_url == null ? "" : var.jwt_jwks_url
    } : {},
  )

  # Read a key (GetItem); count a request and add an answer's tokens (UpdateItem ADD).
  auth_policy_statements = var.api_keys_enabled ? [{
    sid       = "ApiKeysAndUsage"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [aws_dynamodb_table.api_keys[0].arn]
  }] : []
}

# Rules across variables, checked at plan time before anything is created (validation blocks
# may name only their own variable before Terraform 1.9). Read only with a bearer mode on.
data "aws_partition" "bearer_auth" {
  count = local.bearer_auth_enabled ? 1 : 0

  lifecycle {
    precondition {
      condition     = var.url_authorization_type == "NONE"
      error_message = "api_keys_enabled, jwt_issuer and create_cognito_user_pool check a bearer token in the functions, which needs url_authorization_type = \"NONE\": an AWS_IAM URL refuses every request that is not SigV4-signed before the function runs. Set url_authorization_type = \"NONE\", or turn the bearer modes off."
    }
    precondition {
      condition     = !(var.create_cognito_user_pool && var.jwt_issuer != null)
      error_message = "create_cognito_user_pool sets the token issuer to the pool it creates; remove jwt_issuer, or set create_cognito_user_pool = false to trust another issuer."
    }
    precondition {
      condition     = length(local.jwt_audiences) > 0 || local.jwt_issuer == ""
      error_message = "jwt_issuer needs jwt_audiences: the client ids or audiences a token must be issued for (aud, or client_id in a Cognito access token)."
    }
    # A browser sends its bearer in Authorization, which a CORS preflight must allow.
    precondition {
      condition     = var.url_cors == null || contains([for header in try(var.url_cors.allow_headers, []) : lower(header)], "authorization")
      error_message = "url_cors lets browsers call the URLs, and with a bearer mode they send the key or token in the Authorization header: add \"authorization\" (and \"content-type\") to url_cors.allow_headers, and \"retry-after\" to expose_headers to let pages read when a key's quota resets."
    }
    precondition {
      condition     = var.jwt_jwks_url == null || local.jwt_issuer != ""
      error_message = "jwt_jwks_url is where jwt_issuer's signing keys are; set jwt_issuer (or create_cognito_user_pool) too."
    }
  }
}

# -----------------------------------------------------------------------------
# API keys and their daily usage (DynamoDB), managed by `python -m tools.api_keys`
# -----------------------------------------------------------------------------

resource "aws_dynamodb_table" "api_keys" {
  #checkov:skip=CKV_AWS_119:Encrypted with the AWS managed key; the table holds key hashes and counts, never a key.
  count = var.api_keys_enabled ? 1 : 0

  name         = "${var.name}-api-keys"
  billing_mode = "PAY_PER_REQUEST"
  # key#<sha256>, name#<name>, usage#<key id>#<day>: functions/llm_app/auth/keys.py.
  hash_key = "pk"
  tags     = var.tags

  attribute {
    name = "pk"
    type = "S"
  }

  # Set on usage items only: old days go, keys stay listed after they expire or are revoked.
  ttl {
    attribute_name = "purge_at"
    enabled        = true
  }

  server_side_encryption {
    enabled = true
  }

  # A deleted or overwritten key item is a caller locked out; restoring it is cheap.
  point_in_time_recovery {
    enabled = true
  }
}

# -----------------------------------------------------------------------------
# Optional Cognito user pool: people sign in, browser apps send their tokens
# -----------------------------------------------------------------------------

resource "aws_cognito_user_pool" "this" {
  count = var.create_cognito_user_pool ? 1 : 0

  name                = "${var.name}-users"
  deletion_protection = "INACTIVE"
  tags                = var.tags

  # Users are invited (AdminCreateUser), never self-registered: each one can run up the bill.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 7
  }
}

# A public client (no secret): a browser or a CLI cannot keep one.
resource "aws_cognito_user_pool_client" "this" {
  count = var.create_cognito_user_pool ? 1 : 0

  name            = "${var.name}-app"
  user_pool_id    = aws_cognito_user_pool.this[0].id
  generate_secret = false
  # SRP for browser apps; USER_PASSWORD_AUTH for `aws cognito-idp initiate-auth` (README).
  explicit_auth_flows           = ["ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true
  access_token_validity         = 60
  id_token_validity             = 60
  refresh_token_validity        = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}
