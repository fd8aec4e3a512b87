"""What other projects import to test CNN code against refcnn (like ``numpy.testing``).

hypothesis is imported here and below only; torch only in ``adapters.torch_adapter`` and inside
the catalog's torch bindings.
"""
