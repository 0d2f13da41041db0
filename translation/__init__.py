"""translation: English captions machine-translated into Turkish caption pairs (dataset.py)."""
