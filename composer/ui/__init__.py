"""What a user sees of the project verbs, rendered: tables and status texts (tables), the
progress display of up/down (progress), the combined log stream with one colour per service
(logmux). Renders objects it is handed (duck-typed events, container infos, log records); decides
nothing. May import units and errors only, and rich lazily (never at module import). Used by cli.

Imports nothing here: each command pays only for the module it renders with."""
