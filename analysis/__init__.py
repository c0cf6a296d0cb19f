"""(package docstring set by its issue)"""
