"""The Manager's routes, one module per resource."""
