"""Thin command modules: parse flags, call the core, render the result with rich."""
