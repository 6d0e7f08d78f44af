"""The serving images' region tables of modules/sagemaker-tgi, generated from the SageMaker SDK.

`python -m tools.image_tables` (`make images`) rewrites modules/sagemaker-tgi/images.json, which
the module reads with `jsondecode`, from the image configs that the pinned sagemaker-core release
ships (sagemaker/core/image_uri_config/*.json), so the module serves exactly the regions and
images `sagemaker.image_uris.retrieve` returns; `--check` fails when the committed file differs
(tests/image_tables/test_image_tables.py runs it).
"""
