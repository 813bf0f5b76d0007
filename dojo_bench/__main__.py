"""``python -m dojo_bench``: the same CLI as the ``dojo-bench`` command."""

from dojo_bench.cli import main

raise SystemExit(main())
