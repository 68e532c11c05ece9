from maildesk.cli.main import main

raise SystemExit(main())
