"""Growthlens core analytics: pure pandas/numpy/scipy/scikit-learn, no I/O frameworks."""
