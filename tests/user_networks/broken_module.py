"""A user's module that fails to import: the workflow must say which one and why."""

raise ImportError("this module needs a package that is not installed")
