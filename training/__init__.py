"""Training Turkish CLIP's text tower by distillation (the code behind train.py)."""
