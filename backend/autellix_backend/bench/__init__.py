"""The bench: the paper's evaluation (Figures 12-16) on the simulated engine.

``autellix bench`` runs the sweeps (``sweeps``) of the compared systems (``systems``) through the
simulator (``runner``), reads capacities and ratios off them (``capacity``, ``analysis``) and
writes CSV/JSON, PNG figures and a Markdown summary (``report``, ``plots``).
"""

from __future__ import annotations
