from dojo_bench.cli import main

raise SystemExit(main())
