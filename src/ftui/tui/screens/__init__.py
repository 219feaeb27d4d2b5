"""One module per screen (DESIGN.md, The TUI)."""
