from composer.cli.main import main

raise SystemExit(main())
