"""Gateway: the REST API, its run read model, and the front door for submissions."""
