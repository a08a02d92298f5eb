from skymagic.cli import main

raise SystemExit(main())
