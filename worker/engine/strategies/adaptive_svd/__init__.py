"""``adaptive_svd``, the method, in one folder (as PEFT keeps a tuner's config, layer and model together):
``importance`` scores each target matrix on calibration inputs (``calibration``), ``retention`` turns that
into the rank to keep, ``subspace`` builds the kept bases and their projector, ``optimizer`` projects every
update, ``distributed`` does so across ranks, and ``strategy`` puts them together for the training loop."""

from ..registry import register
from .strategy import AdaptiveSvd

register(AdaptiveSvd())
