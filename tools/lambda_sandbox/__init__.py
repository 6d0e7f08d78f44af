"""The one local Lambda sandbox: the built artifacts, run as AWS's Python runtime runs them.

* ``runtime``: the inside of an execution environment (standard library only, run as a file by
  an isolated interpreter): Lambda's sys.path, the ``LambdaContext``, log format and error
  documents; ``serve`` mode for warm workers, ``run`` mode for timed in-process runs;
* ``functions``: a deployed function (``FunctionSpec``) unpacked, with Lambda's environment and
  a pool of warm ``runtime serve`` workers (the local Function URLs use it);
* ``events``: payload format 2.0, both ways (the one event builder, the response mapping);
* ``artifacts``: ``build/*.zip`` unpacked and run by ``runtime run`` (``make bench``, the
  packaging tests);
* ``wrapped``, ``runtime_api``, ``web_adapter``: functions with an exec wrapper, as behind
  AWS's Lambda Web Adapter: a mount namespace per environment (/var/task, /opt), a Runtime
  API of its own (streamed responses included), and the local stand-in for the adapter's
  layer (see docs/local-stack.md).
"""
