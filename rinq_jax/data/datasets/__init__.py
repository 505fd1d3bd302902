"""The generators: the brain datasets and their test sets, the procedural-phantom slice files."""
