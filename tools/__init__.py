"""Developer tooling: one package, a sub-package per component, run from the repository root.

    python -m tools.packaging      build/{chat,qa,layer}.zip           (make package)
    python -m tools.packaging.lock re-pin the requirements             (make lock)
    python -m tools.bench          cold-start and overhead figures     (make bench)
    python -m tools.tf_docs        the READMEs' inputs/outputs tables  (make docs)
    python -m tools.local.up       the whole app on this machine       (make local)
    python -m tools.function_urls  one packaged function behind a local Function URL
    python -m tools.devstack moto  moto with the stack's patches
    python -m tools.model_server   the TGI-compatible model server (its own venv: see its README)

``lambda_sandbox`` runs the built artifacts as Lambda would (used by the URLs, the bench and the
packaging tests). ``paths`` and ``http_server`` are standard-library-only modules every
component may import, the model server included. Nothing here is imported by the functions.
"""
