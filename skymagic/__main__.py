from skymagic.ui.cli import main

raise SystemExit(main())
