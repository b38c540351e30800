from ckaudit.cli import main

raise SystemExit(main())
