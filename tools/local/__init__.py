"""`make local`: the whole app on one machine.

* ``tools.local.up`` (``make local``): moto as the AWS API, ``terraform apply`` of the root module
  against it, the model server (``tools.model_server``) for the endpoint it created, and a local
  Function URL (``tools.function_urls``) for each function it deployed; Ctrl-C tears it all down.
* ``tools.local.down`` (``make local-down``): stops a running ``local.up`` from another terminal.
* ``tools.local.stack``: reads what was deployed back from the AWS API and the Terraform state.
"""
