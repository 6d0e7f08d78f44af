"""Code shared by the chat and document-QA functions.

Each module has one job: `config` reads the environment once, `errors` is the error table,
`function_url` adapts Lambda Function URL events, `model` binds LangChain to the TGI endpoint,
`tokens` budgets prompts against the model's input limit, `service` runs one request.
"""
