"""coursekit: run the course's Databricks notebooks locally and in CI.

- :mod:`coursekit.notebook` reads and writes the Databricks source format.
- :mod:`coursekit.runtime` defines ``spark``, ``dbutils``, ``display`` and the magics
  in a local kernel (and does nothing on Databricks).
- :mod:`coursekit.run` executes notebooks in Jupyter kernels and reports.
"""

__version__ = "0.1.0"
