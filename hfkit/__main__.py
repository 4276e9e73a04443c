from hfkit.cli import main

raise SystemExit(main())
