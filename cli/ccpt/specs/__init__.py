"""INVEST/CRPG task specs: the model, the YAML and Markdown readers, the INVEST lint."""
