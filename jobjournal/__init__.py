"""The `jobjournal` command line: a thin click layer over the common, manager and lister packages."""
