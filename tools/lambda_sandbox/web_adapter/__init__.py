"""The local stand-in for AWS's Lambda Web Adapter layer (LWA 1.1.0), built as a layer zip.

Same layout as AWS's ``LambdaAdapterLayerX86``: ``bootstrap`` (the exec wrapper a function
names with ``AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap``; it execs ``$LAMBDA_TASK_ROOT/$_HANDLER``,
word for word LWA's ``layer/bootstrap``) and ``extensions/lambda-adapter`` (``lambda_adapter.py``
here: Python instead of Rust, the same protocol). ``make local`` publishes it in moto and hands
its ARN to the root module in place of AWS's; it is tooling, never part of the product.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

LAYER_NAME = "local-lambda-web-adapter"
ADAPTER_SOURCE = Path(__file__).with_name("lambda_adapter.py")
BOOTSTRAP = '#!/bin/bash\n\nexec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"\n'
_EXECUTABLE = 0o100755 << 16  # a regular file, rwxr-xr-x, in a zip entry's external_attr
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # reproducible: the same bytes, the same CodeSha256


def build_layer(destination: Path) -> Path:
    """Write the layer zip to ``destination`` (a file path) and return it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    entries = {
        "bootstrap": BOOTSTRAP.encode(),
        "extensions/lambda-adapter": ADAPTER_SOURCE.read_bytes(),
    }
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.external_attr = _EXECUTABLE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return destination
