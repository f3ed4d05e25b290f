"""testbed: an IT/OT convergence runtime for the industrial edge (IEC 61499 on asyncio)."""

__version__ = "0.1.0"
