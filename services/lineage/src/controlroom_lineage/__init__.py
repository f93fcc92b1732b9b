"""Lineage: the data-lineage graph, from declared inputs of runs that completed."""
