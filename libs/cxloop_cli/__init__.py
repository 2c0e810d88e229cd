"""The `cxloop` command line: run the suite locally and ask how it is doing."""
