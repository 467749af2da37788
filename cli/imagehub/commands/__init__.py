"""The CLI's commands, one module per feature, each with its own rendering."""
