"""Developer stack tooling: moto as the AWS API, and Terraform run against it.

Shared by the Terraform tests (tests/terraform) and ``make local``::

    from tools.devstack import MotoServer, Terraform, aws_env, stage_tree, terraform_env

    with MotoServer() as moto:                        # patched moto on 127.0.0.1:<free port>
        tree = stage_tree(tmp / "tf")                 # copy of the .tf sources, no state in git
        env = {**terraform_env(tmp), **aws_env(moto.url, region="eu-west-1")}
        tf = Terraform(tree, env)
        tf.init()
        tf.apply({"name": "demo"})
        print(tf.output_json()["chat_url"])
        tf.destroy({"name": "demo"})
"""

from tools.devstack.moto_server import MotoServer, MotoServerError, aws_env
from tools.devstack.terraform import (
    DEFAULT_PLUGIN_CACHE,
    MIRROR_ENV,
    REPO_ROOT,
    Terraform,
    TerraformError,
    cli_config,
    stage_tree,
    terraform_env,
)

__all__ = [
    "DEFAULT_PLUGIN_CACHE",
    "MIRROR_ENV",
    "REPO_ROOT",
    "MotoServer",
    "MotoServerError",
    "Terraform",
    "TerraformError",
    "aws_env",
    "cli_config",
    "stage_tree",
    "terraform_env",
]
