"""Data of the devicetree stage: bindings.yaml."""
