"""numba kernels: plain functions over numpy arrays and scalars, named ``<algorithm>_<step>``.

Kernels never see ids, DataFrames or estimators. Models import them; nothing else in
factorkit imports numba.
"""
