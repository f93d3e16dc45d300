"""Rendering projects from the copier template, and bringing template changes into them.

`ccpt.scaffold.project.create_project` is what `ccpt new` runs; `ccpt.scaffold.update` is what
`ccpt update` runs. The template's own files and questions live in `scaffolds/project/`.
Rendering runs no template code: copier is called with `unsafe=False`, and a template that
asks for tasks, migrations or Jinja extensions is refused before anything is rendered.
"""
