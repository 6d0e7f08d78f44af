"""`make local`: the whole app on one machine.

* ``local.up`` (``make local``): moto as the AWS API, ``terraform apply`` of the root module
  against it, the model server (``sagemaker_tgi``) for the endpoint it created, and a local
  Function URL (``local.function_urls``) for each function it deployed; Ctrl-C tears it all down.
* ``local.down`` (``make local-down``): stops a running ``local.up`` from another terminal.
* ``local.function_urls``: one packaged function behind a local URL, usable alone.
* ``local.stack``: reads what was deployed back from the AWS API and the Terraform state.
"""
