"""The device commands over the core: `run`, `check`, `bench` (and its `--profile`). Each has
configure_parser() and main(); `edge.cli` imports one only when it is chosen."""
