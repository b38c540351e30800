"""The model side: the worker that builds models under the project's interpreter, which files define a
model, the dry-run outcome turned into findings, and key fixes."""
