"""sigaudit PyTorch models: networks built from a name, training and evaluation CLIs, shipped weights."""
